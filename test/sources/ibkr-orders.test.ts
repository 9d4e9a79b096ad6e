/** IbkrOrderClient against the TWS simulator: place, fill, commission, cancel, reconnect, reconcile. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { IbkrConnection } from '../../src/sources/ibkr/connection.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { CommissionJoin, type IbFill } from '../../src/sources/ibkr/commission-join.ts';
import { IbkrOrderClient } from '../../src/sources/ibkr/order-client.ts';
import { IbkrError } from '../../src/sources/ibkr/errors.ts';
import { startTwsSimulator, type TwsSimulator, type TwsSimulatorOptions } from '../fakes/tws/index.ts';
import { record } from '../helpers/wait.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(simOpts: TwsSimulatorOptions = {}): Promise<{ sim: TwsSimulator; orders: IbkrOrderClient }> {
  const sim = await startTwsSimulator({ clock: new ManualClock(START), firstOrderId: 100, ...simOpts });
  // The client library's outgoing queue drains in real time: unbounded here, so no message waits while the clock moves.
  const connection = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 21, clock: sim.clock, maxRequestsPerSecond: 1e6 });
  const orders = new IbkrOrderClient({ connection, clock: sim.clock, ownsConnection: true });
  cleanups.push(async () => {
    await orders.close();
    await sim.close();
  });
  await orders.start();
  return { sim, orders };
}

type Status = [number, string, number, number, number];

test('a market order is placed, acknowledged, filled, and its commission recorded', async () => {
  const { sim, orders } = await setup();
  const statuses = record<Status>(orders, 'status');
  const executions = record<[{ execId: string; orderId: number; orderRef: string; qty: number; price: number; side: string }]>(orders, 'execution');
  const commissions = record<[{ execId: string; commission: number; currency: string }]>(orders, 'commission');

  const id = orders.placeOrder({ clientOrderId: 'c-0001', symbol: 'AAPL', side: 'buy', qty: 300, type: 'market' });
  assert.equal(id, 100, 'the first id is nextValidId');
  await sim.advanceUntil(() => commissions.seen.length > 0, 'commission');
  await sim.advanceUntil(() => statuses.seen.some(([oid, st]) => oid === id && st === 'Filled'), 'filled');

  assert.ok(
    statuses.seen.some(([oid, st]) => oid === id && st === 'Submitted'),
    'acknowledged before the fill',
  );
  const filled = statuses.seen.find(([oid, st]) => oid === id && st === 'Filled')!;
  assert.equal(filled[2], 300);
  assert.equal(filled[3], 0);
  const [exec] = executions.seen[0];
  assert.equal(exec.orderId, id);
  assert.equal(exec.orderRef, 'c-0001', 'the client order id travels as orderRef');
  assert.equal(exec.qty, 300);
  assert.equal(exec.side, 'buy');
  assert.equal(exec.price, filled[4]);
  assert.deepEqual(commissions.seen[0][0], { execId: exec.execId, commission: 1.5, currency: 'USD' });

  const placed = sim.placedOrders;
  assert.equal(placed.length, 1);
  assert.deepEqual(
    { orderId: placed[0].orderId, clientId: placed[0].clientId, action: placed[0].action, qty: placed[0].totalQuantity, type: placed[0].orderType, ref: placed[0].orderRef },
    { orderId: 100, clientId: 21, action: 'BUY', qty: 300, type: 'MKT', ref: 'c-0001' },
  );

  const execs = await orders.executions();
  assert.equal(execs.length, 1);
  assert.equal(execs[0].execId, exec.execId);
  assert.equal(execs[0].orderRef, 'c-0001');
  assert.equal(execs[0].commission, 1.5);
  assert.equal(execs[0].commissionCurrency, 'USD');
});

test('a resting limit order is listed as open and can be cancelled', async () => {
  const { sim, orders } = await setup();
  const statuses = record<Status>(orders, 'status');
  const errors = record<[number, number, string]>(orders, 'orderError');
  const id = orders.placeOrder({ clientOrderId: 'c-lmt', symbol: 'MSFT', side: 'buy', qty: 10, type: 'limit', limitPrice: 1 });
  await sim.advanceUntil(() => statuses.seen.some(([oid, st]) => oid === id && st === 'Submitted'), 'submitted');

  const open = await orders.openOrders();
  assert.equal(open.length, 1);
  assert.deepEqual(
    { orderId: open[0].orderId, ref: open[0].clientOrderId, symbol: open[0].symbol, side: open[0].side, qty: open[0].qty, type: open[0].type, limit: open[0].limitPrice, status: open[0].status },
    { orderId: id, ref: 'c-lmt', symbol: 'MSFT', side: 'buy', qty: 10, type: 'LMT', limit: 1, status: 'Submitted' },
  );

  orders.cancelOrder(id);
  await sim.advanceUntil(() => statuses.seen.some(([oid, st]) => oid === id && st === 'Cancelled'), 'cancelled');
  await sim.advanceUntil(() => errors.seen.some(([oid, code]) => oid === id && code === 202), '202');
  assert.equal(sim.orderById(id)?.status, 'Cancelled');
  assert.deepEqual(await orders.openOrders(), []);
});

test('order ids keep increasing, and an order is refused rather than queued while disconnected', async () => {
  const { sim, orders } = await setup();
  const a = orders.placeOrder({ clientOrderId: 'a', symbol: 'AAPL', side: 'sell', qty: 1, type: 'market' });
  const b = orders.placeOrder({ clientOrderId: 'b', symbol: 'AAPL', side: 'sell', qty: 1, type: 'market' });
  assert.equal(b, a + 1);
  await sim.advanceUntil(() => sim.placedOrders.length === 2, 'both placed');
  sim.dropClients();
  await sim.advanceUntil(() => !orders.connection.isReady, 'disconnected');
  assert.throws(
    () => orders.placeOrder({ clientOrderId: 'c', symbol: 'AAPL', side: 'sell', qty: 1, type: 'market' }),
    (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_DISCONNECTED',
  );
  await sim.advanceUntil(() => orders.connection.isReady, 'reconnected');
  const c = orders.placeOrder({ clientOrderId: 'c', symbol: 'AAPL', side: 'sell', qty: 1, type: 'market' });
  assert.ok(c > b);
  await sim.advanceUntil(() => sim.placedOrders.length === 3, 'placed');
  assert.deepEqual(
    sim.placedOrders.map((p) => p.orderRef),
    ['a', 'b', 'c'],
    'nothing was sent twice',
  );
});

test('after a reconnect the client reconciles: open orders and executions, matched by client order id', async () => {
  const { sim, orders } = await setup();
  const reconciled = record<[{ openOrders: { clientOrderId: string }[]; executions: { orderRef: string; commission?: number }[] }]>(orders, 'reconciled');
  const filled = orders.placeOrder({ clientOrderId: 'j-filled', symbol: 'AAPL', side: 'buy', qty: 5, type: 'market' });
  orders.placeOrder({ clientOrderId: 'j-resting', symbol: 'AAPL', side: 'buy', qty: 5, type: 'limit', limitPrice: 1 });
  await sim.advanceUntil(() => sim.orderById(filled)?.status === 'Filled', 'fill');
  sim.dropClients();
  await sim.advanceUntil(() => reconciled.seen.length > 0, 'reconciled');
  const [state] = reconciled.seen[0];
  assert.deepEqual(
    state.openOrders.map((o) => o.clientOrderId),
    ['j-resting'],
  );
  assert.deepEqual(
    state.executions.map((e) => [e.orderRef, e.commission]),
    [['j-filled', 1]],
  );
  assert.equal(sim.placedOrders.length, 2, 'reconciling sends no order');
});

test('bad orders are refused before anything is sent, naming the field', async () => {
  const { sim, orders } = await setup();
  const base = { clientOrderId: 'x', symbol: 'AAPL', side: 'buy', qty: 1, type: 'market' } as const;
  assert.throws(() => orders.placeOrder({ ...base, qty: 0 }), /qty/);
  assert.throws(() => orders.placeOrder({ ...base, symbol: 'aapl' }), /symbol/);
  assert.throws(() => orders.placeOrder({ ...base, clientOrderId: '' }), /clientOrderId/);
  assert.throws(() => orders.placeOrder({ ...base, type: 'limit' }), /limitPrice/);
  assert.throws(() => orders.placeOrder({ ...base, side: 'hold' as never }), /side/);
  assert.equal(sim.placedOrders.length, 0);
});

/** The trader's commission join (src/sources/ibkr/commission-join.ts) fed by the order client, as the IBKR broker wires it. */
function joinFills(orders: IbkrOrderClient, sim: TwsSimulator, waitMs: number) {
  const warnings: string[] = [];
  const join = new CommissionJoin(sim.clock, { warn: (_obj, msg) => warnings.push(msg) }, waitMs, 100);
  const fills: IbFill[] = [];
  orders.on('execution', (x) => void join.fill(x, undefined).then((f) => fills.push(f)));
  orders.on('commission', (c) => join.report(c.execId, c.commission));
  return { join, fills, warnings };
}

test('a commission report within the wait is joined to its fill, which goes out once, complete', async () => {
  const { sim, orders } = await setup({ commissionDelayMs: 3_000 });
  const { join, fills } = joinFills(orders, sim, 5_000);
  const placedAt = sim.clock.now();
  orders.placeOrder({ clientOrderId: 'c-join', symbol: 'AAPL', side: 'buy', qty: 300, type: 'market' });
  await sim.advanceUntil(() => fills.length === 1, 'the fill');
  assert.equal(sim.clock.now() - placedAt, 3_000, 'held until its commission report came');
  assert.equal(fills[0].commission, 1.5, '300 shares at $0.005');
  assert.equal(join.fillsWithoutCommission, 0);
  assert.equal(join.lateCommissions, 0);
});

test('a commission report after the wait: the fill goes out at commission 0 when the wait ends, and the report is counted and logged as late', async () => {
  const { sim, orders } = await setup({ commissionDelayMs: 8_000 });
  const { join, fills, warnings } = joinFills(orders, sim, 5_000);
  const placedAt = sim.clock.now();
  orders.placeOrder({ clientOrderId: 'c-late', symbol: 'AAPL', side: 'buy', qty: 300, type: 'market' });
  await sim.advanceUntil(() => fills.length === 1, 'the fill');
  assert.equal(sim.clock.now() - placedAt, 5_000, 'released when the wait ended');
  assert.equal(fills[0].commission, 0);
  assert.equal(join.fillsWithoutCommission, 1);
  await sim.advanceUntil(() => join.lateCommissions === 1, 'the late report');
  assert.equal(sim.clock.now() - placedAt, 8_000);
  assert.match(warnings.at(-1) ?? '', /came after its fill was recorded with commission 0/);
  assert.equal(join.known(fills[0].execId), 1.5, 'the late commission is known for a later executions() listing');
  assert.equal(fills.length, 1, 'the fill was not sent again');
});
