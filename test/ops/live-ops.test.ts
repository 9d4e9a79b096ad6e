/**
 * Operating a session as a user does: `barkeep serve` as a child process on the simulated market
 * with the paper broker on an accelerated clock (one simulated minute per real second), driven over
 * HTTP and with the barkeep CLI, with a webhook receiver on 127.0.0.1 that fails the first deliveries.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, serve, until, type Served } from '../helpers/serve.ts';

const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));
const FAST = `runtime:\n  clock: accelerated\n  clock_speed: 60\n  clock_start: "2026-01-05T15:00:00Z"\n`;
const TOKEN = 'ops-test-token-4242';

function holdYaml(params: Record<string, unknown>, extra = ''): string {
  return `${FAST}trader:\n  strategy: module\n  strategy_module: ${JSON.stringify(HOLD)}\n  strategy_params: ${JSON.stringify(params)}\n${extra}`;
}

const status = async (app: Served) => (await app.get('/live/status')).body;
const qtyOf = (s: any, symbol: string) => s.positions.find((p: any) => p.symbol === symbol)?.qty ?? 0;
const auth = { authorization: `Bearer ${TOKEN}` };
const cents = (x: number) => Math.round(x * 100) / 100 === x;

/** A webhook receiver that answers 503 to its first `failFirst` requests. */
async function receiver(failFirst: number) {
  const got: Array<{ status: number; body: any; raw: string }> = [];
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const c of req) raw += c;
    const status = got.length < failFirst ? 503 : 200;
    got.push({ status, body: JSON.parse(raw), raw });
    res.writeHead(status).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('a session is followed and controlled from the terminal: partial start, collector, stop, kill twice, orders, fills, webhooks', async () => {
  const hook = await receiver(2);
  const notify = `notify:\n  webhooks: [${JSON.stringify(hook.url)}]\n  retry_initial_ms: 50\n`;
  await using app = await serve({ yaml: holdYaml({ qty: 10, restingLimit: true }, notify), env: { BARKEEP_API_TOKEN: TOKEN }, timeoutMs: 60_000 });
  const cli = (args: string[]) => runCli(args, { env: { BARKEEP_URL: app.url, BARKEEP_API_TOKEN: TOKEN } });

  const holding = await until(
    async () => {
      const s = await status(app);
      return qtyOf(s, 'QQQ') === 10 && qtyOf(s, 'SPY') === 10 && s.open_orders.length === 2 && s;
    },
    'both positions and the resting limits',
    30_000,
  );
  // The status names the module's strategy as its orders do, and says where its settings came from.
  assert.equal(holding.strategy, 'hold');
  assert.equal(holding.strategy_module, HOLD);
  assert.equal(holding.started_by, 'config');
  assert.match(holding.last_signals.QQQ.reason, /\S/);
  assert.equal(holding.last_signals.QQQ.signal.startsWith('target') || holding.last_signals.QQQ.signal.startsWith('buy'), true);
  assert.equal(typeof holding.cash, 'number');
  for (const x of [holding.cash, holding.pnl_today.realized, holding.pnl_today.total, ...holding.positions.map((p: any) => p.unrealized_pnl)]) assert.ok(cents(x), `${x} is rounded to cents`);

  // Orders and fills, filtered, from the journal.
  const open = (await app.get('/orders?state=open')).body.orders;
  assert.equal(open.length, 2);
  assert.ok(open.every((o: any) => o.type === 'limit'));
  const qqq = (await app.get('/orders?symbol=qqq')).body.orders;
  assert.ok(qqq.length > 0 && qqq.every((o: any) => o.symbol === 'QQQ'));
  const bad = await app.get('/orders?state=bogus');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.field, 'state');
  const fills = (await app.get('/fills')).body.fills;
  assert.ok(fills.length >= 2);
  assert.deepEqual(Object.keys(fills[0]).sort(), ['client_order_id', 'commission', 'exec_id', 'price', 'qty', 'side', 'strategy', 'symbol', 'time']);
  const later = fills[fills.length - 1].time;
  assert.ok((await app.get(`/fills?since=${encodeURIComponent(later)}`)).body.fills.every((f: any) => f.time >= later));
  const csv = await cli(['fills', '--csv']);
  assert.equal(csv.code, 0, csv.stderr);
  assert.equal(csv.stdout.split('\n')[0], 'time,exec_id,client_order_id,strategy,symbol,side,qty,price,commission');
  assert.ok(csv.stdout.trim().split('\n').length >= 3);
  const ocsv = await cli(['orders', '--csv', '--state', 'filled']);
  assert.match(ocsv.stdout, /^created_at,updated_at,client_order_id,strategy,symbol,side,qty,type/);
  assert.ok(
    ocsv.stdout
      .trim()
      .split('\n')
      .slice(1)
      .every((l) => l.includes(',filled,')),
  );
  const st = await cli(['status']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /with hold \(.*trader-hold-strategy\.ts\), paper broker \(settings: config\)/);
  assert.match(st.stdout, /^QQQ\s+10\s/m);

  // P&L, equity, positions and exposure as gauges.
  const metrics = (await app.get('/metrics')).body as string;
  assert.match(metrics, /^barkeep_position_shares\{symbol="QQQ"\} 10$/m);
  assert.match(metrics, /^barkeep_equity_dollars \d/m);
  assert.match(metrics, /^barkeep_exposure_dollars\{kind="gross"\} \d/m);
  assert.match(metrics, /^barkeep_pnl_today_dollars\{part="total"\} /m);

  // A partial start keeps the strategy, its params and module, and the symbol that holds a position.
  const partial = await app.post('/live/start', { symbols: ['QQQ'] }, auth);
  assert.equal(partial.status, 200, JSON.stringify(partial.body));
  assert.equal(partial.body.strategy, 'hold');
  assert.deepEqual(partial.body.strategy_params, { qty: 10, restingLimit: true });
  assert.deepEqual(partial.body.symbols, ['QQQ', 'SPY'], 'SPY holds 10 shares: it stays in the loop');
  assert.equal(partial.body.started_by, 'request');
  const config = (await app.get('/config')).body.settings;
  assert.equal(config.find((s: any) => s.key === 'trader.symbols').source, 'POST /live/start');
  assert.ok(!JSON.stringify(config).includes(TOKEN), 'the token is not in GET /config');

  // A bad param is a 400 naming it; the running loop goes on.
  const badParam = await app.post('/live/start', { strategy: 'sma-crossover', strategy_params: { fats: 3 } }, auth);
  assert.equal(badParam.status, 400);
  assert.equal(badParam.body.field, 'strategy_params.fats');
  assert.equal((await status(app)).strategy, 'hold');

  // The collector keeps what is traded (a bar size it cannot build is a 409: test/ops/rollup.test.ts).
  const col = await app.post('/data-collector/start', { symbols: ['IWM'] }, auth);
  assert.equal(col.status, 200);
  assert.deepEqual([...col.body.symbols].sort(), ['IWM', 'QQQ', 'SPY']);
  assert.deepEqual(col.body.kept_for_trading.sort(), ['QQQ', 'SPY']);
  const newSymbol = await app.post('/live/start', { symbols: ['QQQ', 'DIA'] }, auth);
  assert.equal(newSymbol.status, 200);
  assert.deepEqual(newSymbol.body.collecting_added, ['DIA']);
  assert.ok((await app.get('/data-collector/status')).body.symbols.includes('DIA'), 'the collector now collects what the loop trades');

  // Stop cancels working orders and says which; P&L and cash stay known after it.
  await until(async () => (await app.get('/orders?state=open')).body.orders.length > 0 && true, 'a working order to cancel', 20_000);
  const stopped = await app.post('/live/stop', undefined, auth);
  assert.equal(stopped.status, 200);
  assert.ok(stopped.body.cancelled_orders.length >= 1, JSON.stringify(stopped.body));
  assert.deepEqual(stopped.body.cancel_errors, []);
  // Every working order of the stopped session has ended by the time stop answers (one on its way
  // to the broker too: the stop waits for it before cancelling).
  const stillOpen = (await app.get('/orders?state=open')).body.orders;
  assert.equal(stillOpen.length, 0, JSON.stringify(stillOpen));
  const after = await status(app);
  assert.equal(after.is_running, false);
  assert.ok(after.positions.length > 0);
  assert.equal(typeof after.cash, 'number');
  assert.notEqual(after.pnl_today.realized, 0, 'commissions were paid: not the zeros of a stopped loop');

  // Kill with flatten, twice: the second does not cancel the first one's flatten orders.
  assert.equal((await app.post('/live/start', {}, auth)).status, 200);
  const k1 = await cli(['kill', '--flatten']);
  assert.equal(k1.code, 0, k1.stderr);
  const k2 = await cli(['kill', '--flatten']);
  assert.equal(k2.code, 0, k2.stderr);
  const flat = await until(
    async () => {
      const s = await status(app);
      return s.positions.length === 0 && s;
    },
    'flat after kill --flatten twice',
    30_000,
  );
  assert.equal(flat.risk.killed, true);
  const flattens = (await app.get('/orders')).body.orders.filter((o: any) => o.strategy === 'flatten');
  assert.ok(flattens.length > 0);
  assert.deepEqual(
    flattens.filter((o: any) => o.state === 'cancelled'),
    [],
    'no flatten order was cancelled by the second kill',
  );
  assert.equal((await cli(['resume'])).code, 0);
  assert.equal((await status(app)).risk.killed, false);

  // Webhooks: the first deliveries failed and were retried; fills and the kill switch arrived; no secret.
  await until(async () => hook.got.some((g) => g.status === 200 && g.body.event === 'kill_switch') && true, 'the kill_switch webhook', 10_000);
  assert.deepEqual(
    hook.got.slice(0, 2).map((g) => g.status),
    [503, 503],
  );
  const delivered = hook.got.filter((g) => g.status === 200).map((g) => g.body.event);
  assert.ok(delivered.includes('fill') && delivered.includes('feed_switch'), delivered.join());
  assert.ok(hook.got.every((g) => !g.raw.includes(TOKEN)));
  await hook.close();

  // Every decision has a log line: signals with their reason, orders, fills, refusals, the kill switch.
  const events = new Set(
    app.lines.map((l) => {
      try {
        return JSON.parse(l).event;
      } catch {
        return undefined;
      }
    }),
  );
  for (const e of ['signal', 'order', 'fill', 'kill']) assert.ok(events.has(e), `a "${e}" log line`);
  assert.equal(app.lines.filter((l) => l.includes('"msg":"kill switch engaged"')).length, 2, 'one line per kill, not two');
});

test('the config wins over a saved session at start; without autostart the saved session resumes; positions always resume', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-resume-'));
  try {
    // A strategy module outside the repository, with no package.json near it.
    const outside = join(dir, 'strategies', 'mine.ts');
    mkdirSync(join(dir, 'strategies'));
    writeFileSync(
      outside,
      `interface Bar { close: number }\nexport default function mine(params: Record<string, unknown>) {\n  const qty = typeof params.qty === 'number' ? params.qty : 1;\n  return { name: 'mine-outside', warmUp(_s: string, _b: readonly Bar[]): void {}, onBar(symbol: string, bar: Bar) { return { kind: 'target' as const, symbol, targetQty: qty, reason: 'hold ' + qty + ' at ' + bar.close }; } };\n}\n`,
    );
    const env = { BARKEEP_DATA_DIR: join(dir, 'data') };
    {
      await using app = await serve({ yaml: holdYaml({ qty: 10 }), env, timeoutMs: 60_000 });
      await until(async () => qtyOf(await status(app), 'QQQ') === 10 && true, '10 QQQ from the config strategy', 30_000);
      const started = await app.post('/live/start', { strategy_module: outside, strategy_params: { qty: 4 } });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      assert.equal(started.body.strategy, 'mine-outside');
      await until(async () => qtyOf(await status(app), 'QQQ') === 4 && true, 'the outside module trading', 30_000);
      const orders = (await app.get('/orders?symbol=QQQ')).body.orders;
      assert.ok(orders.some((o: any) => o.strategy === 'mine-outside'));
    }
    {
      // trader.autostart false: the session started over HTTP resumes, and says so.
      await using app = await serve({ yaml: holdYaml({ qty: 10 }, '  autostart: false\n'), env, timeoutMs: 60_000 });
      const s = await status(app);
      assert.equal(s.is_running, true);
      assert.equal(s.strategy, 'mine-outside');
      assert.equal(s.started_by, 'resumed');
      assert.equal(qtyOf(s, 'QQQ'), 4);
      assert.equal(typeof s.positions.find((p: any) => p.symbol === 'QQQ').last_price, 'number', 'last_price known after the restart');
      const settings = (await app.get('/config')).body.settings;
      assert.equal(settings.find((x: any) => x.key === 'trader.strategy_module').source, 'resumed (saved session)');
      assert.equal(settings.find((x: any) => x.key === 'trader.strategy_module').value, outside);
    }
    {
      // trader.autostart true: the config's strategy and params win; the position is still there.
      await using app = await serve({ yaml: holdYaml({ qty: 10 }), env, timeoutMs: 60_000 });
      const s = await status(app);
      assert.equal(s.strategy, 'hold');
      assert.equal(s.started_by, 'config');
      assert.deepEqual(s.strategy_params, { qty: 10 });
      assert.equal(qtyOf(s, 'QQQ'), 4, 'positions resume whatever the settings');
      assert.ok(app.lines.some((l) => l.includes('the config wins over the saved session settings')));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
