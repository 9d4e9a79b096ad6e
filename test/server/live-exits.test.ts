/**
 * Protective exits through the HTTP API, as a user sets them: `barkeep serve` on the simulated
 * market with the paper broker, an accelerated clock, and `exits` in POST /live/start.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serve, until, type Served } from '../helpers/serve.ts';

const FAST = `runtime:\n  clock: accelerated\n  clock_speed: 60\n  clock_start: "2026-01-05T15:00:00Z"\n`;

test('exits in POST /live/start are checked field by field, then attach a take-profit and a stop-loss to every entry, shown in /orders and /live/status', async () => {
  await using app: Served = await serve({ yaml: `${FAST}trader:\n  autostart: false\n` });
  const cases: Array<[unknown, string]> = [
    [{ exits: { stop_loss_pct: 0 } }, 'exits.stop_loss_pct'],
    [{ exits: { take_profit_pct: 'far' } }, 'exits.take_profit_pct'],
    [{ exits: { stop_loss_pct: 2, trailing_stop_pct: 1 } }, 'exits.trailing_stop_pct'],
    [{ exits: { stop: 2 } }, 'exits.stop'],
  ];
  for (const [body, field] of cases) {
    const r = await app.post('/live/start', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.field, field, JSON.stringify(r.body));
  }
  const started = await app.post('/live/start', { symbols: ['QQQ'], exits: { take_profit_pct: 3, stop_loss_pct: 2 } });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  assert.deepEqual(started.body.exits, { stop_loss_pct: 2, take_profit_pct: 3 });
  const orders = await until(async () => {
    const { body } = await app.get('/orders');
    const legs = body.orders.filter((o: any) => o.group_id !== null);
    return legs.length >= 3 && legs;
  }, 'a bracket in /orders', 45_000);
  const group = orders[0].group_id;
  const legs = orders.filter((o: any) => o.group_id === group);
  const byRole = Object.fromEntries(legs.map((o: any) => [o.role, o]));
  assert.deepEqual(Object.keys(byRole).sort(), ['entry', 'stop_loss', 'take_profit']);
  assert.equal(byRole.entry.client_order_id, group);
  assert.equal(byRole.take_profit.client_order_id, `${group}-tp`);
  assert.equal(byRole.take_profit.type, 'limit');
  assert.equal(byRole.take_profit.tif, 'gtc');
  assert.equal(byRole.stop_loss.type, 'stop');
  assert.equal(typeof byRole.stop_loss.stop_price, 'number');
  assert.equal(byRole.stop_loss.trail, null);
  assert.notEqual(byRole.entry.side, byRole.stop_loss.side);
  const st = (await app.get('/live/status')).body;
  assert.deepEqual(st.exits, { stop_loss_pct: 2, take_profit_pct: 3 });
  for (const o of st.open_orders) for (const k of ['type', 'stop_price', 'trail', 'tif', 'group_id', 'role']) assert.ok(k in o, `${k} in open_orders`);
});
