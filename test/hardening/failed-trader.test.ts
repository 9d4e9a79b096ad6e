/**
 * Regression from the hostile campaign (issue 12): "a failed trader leaves the operator blind".
 * Once the supervisor gives up on the trader, orders, positions and P&L still come from the journal,
 * the kill switch latches (and says what it could not cancel), and POST /actors/trader/restart
 * (behind the token) brings the trader back, with the kill switch still engaged.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve, until } from '../helpers/serve.ts';

const TOKEN = 'tok-failed-trader';
const YAML = `runtime:
  clock: accelerated
  clock_speed: 60
  clock_start: "2026-01-05T15:00:00Z"
supervisor:
  max_restarts: 1
  restart_window_ms: 600000
  backoff_initial_ms: 50
`;

test('a failed trader leaves the operator blind: reads come from the journal, kill latches, restart revives', async () => {
  await using app = await serve({ env: { BARKEEP_API_TOKEN: TOKEN, BARKEEP_FAULTS: '1' }, yaml: YAML, timeoutMs: 120_000 });
  const auth = { authorization: `Bearer ${TOKEN}` };
  const live = await until(
    async () => {
      const s = (await app.get('/live/status')).body;
      return s.positions?.length > 0 && s;
    },
    'a position',
    45_000,
  );
  assert.equal(live.is_running, true);

  // Two crashes inside the window with max_restarts 1: the supervisor marks the trader failed.
  assert.equal((await app.post('/actors/trader/crash', undefined, auth)).status, 202);
  await until(async () => {
    const t = (await app.get('/actors')).body.actors.find((a: any) => a.name === 'trader');
    return t.state === 'running' && t.restarts === 1;
  }, 'the first restart');
  assert.equal((await app.post('/actors/trader/crash', undefined, auth)).status, 202);
  await until(async () => (await app.get('/actors')).body.actors.find((a: any) => a.name === 'trader').state === 'failed', 'the trader failed');

  const orders = await app.get('/orders');
  assert.equal(orders.status, 200, JSON.stringify(orders.body));
  assert.ok(orders.body.orders.length > 0, 'orders from the journal');
  assert.equal(orders.body.trader, 'unavailable');
  const positions = await app.get('/positions');
  assert.equal(positions.status, 200);
  const bySymbol = Object.fromEntries(positions.body.positions.map((p: any) => [p.symbol, p.qty]));
  // The journal's fills replayed give the same positions the trader last showed, or later ones.
  const filled: Record<string, number> = {};
  for (const o of orders.body.orders) filled[o.symbol] = (filled[o.symbol] ?? 0) + (o.side === 'buy' ? o.filled_qty : -o.filled_qty);
  for (const [symbol, qty] of Object.entries(filled)) assert.equal(bySymbol[symbol] ?? 0, qty, `${symbol} position from the fills`);
  const status = await app.get('/live/status');
  assert.equal(status.status, 200);
  assert.equal(status.body.is_running, false);
  assert.equal(status.body.trader, 'unavailable');
  assert.match(status.body.trader_reason, /failed/);
  assert.equal(typeof status.body.pnl_today.total, 'number');

  const kill = await app.post('/live/kill', {}, auth);
  assert.ok(kill.status === 202 || kill.status === 503, JSON.stringify(kill.body));
  assert.equal(kill.body.killed, true);
  assert.ok(Array.isArray(kill.body.could_not_cancel));
  if (kill.status === 503) assert.match(kill.body.message, /could not be cancelled/);
  assert.equal((await app.get('/live/status')).body.risk.killed, true);

  // Restart is behind the token like every POST.
  assert.equal((await app.post('/actors/trader/restart')).status, 401);
  const restart = await app.post('/actors/trader/restart', undefined, auth);
  assert.equal(restart.status, 202, JSON.stringify(restart.body));
  const back = await until(async () => {
    const s = await app.get('/live/status');
    return s.status === 200 && s.body.trader === undefined && s.body;
  }, 'the trader back');
  assert.equal(back.risk.killed, true, 'the kill switch latched while the trader was down holds');
  assert.equal(back.is_running, true, 'it resumed its session');
});
