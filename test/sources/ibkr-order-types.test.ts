/**
 * Native IB order types through IbkrOrderClient against the TWS simulator: what goes on the wire
 * (STP, STP LMT, TRAIL, parent/child with transmit, ocaGroup, tif, outsideRth) and how the
 * simulated TWS works them, bar by bar with chosen prices (sim.tradeBar).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { IbkrConnection } from '../../src/sources/ibkr/connection.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { IbkrOrderClient } from '../../src/sources/ibkr/order-client.ts';
import { IbkrError } from '../../src/sources/ibkr/errors.ts';
import { startTwsSimulator, type TwsSimulator } from '../fakes/tws/index.ts';
import { record, waitFor } from '../helpers/wait.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(): Promise<{ sim: TwsSimulator; orders: IbkrOrderClient }> {
  // A clock nobody moves: the random price path stands still during a test; tradeBar moves the price.
  const sim = await startTwsSimulator({ clock: new ManualClock(START), firstOrderId: 100 });
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

test('a stop, a stop-limit and a percent trailing stop go to TWS as STP, STP LMT and TRAIL with their prices, tif and outsideRth', async () => {
  const { sim, orders } = await setup();
  orders.placeOrder({ clientOrderId: 'stp', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop', stopPrice: 95, tif: 'gtc' });
  orders.placeOrder({ clientOrderId: 'stplmt', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop_limit', stopPrice: 95, limitPrice: 94, outsideRth: true });
  orders.placeOrder({ clientOrderId: 'trail', symbol: 'AAPL', side: 'sell', qty: 10, type: 'trailing_stop', trailPercent: 2.5, stopPrice: 90 });
  orders.placeOrder({ clientOrderId: 'trail-amt', symbol: 'AAPL', side: 'buy', qty: 10, type: 'trailing_stop', trailAmount: 1.5 });
  await waitFor(() => sim.placedOrders.length === 4, 'placed');
  const view = sim.placedOrders.map((p) => [p.orderRef, p.orderType, p.lmtPrice, p.auxPrice, p.trailingPercent, p.trailStopPrice, p.tif, p.outsideRth, p.transmit]);
  assert.deepEqual(view, [
    ['stp', 'STP', undefined, 95, undefined, undefined, 'GTC', false, true],
    ['stplmt', 'STP LMT', 94, 95, undefined, undefined, 'DAY', true, true],
    ['trail', 'TRAIL', undefined, undefined, 2.5, 90, 'DAY', false, true],
    ['trail-amt', 'TRAIL', undefined, 1.5, undefined, undefined, 'DAY', false, true],
  ]);
  const open = await orders.openOrders();
  assert.deepEqual(
    open.map((o) => [o.clientOrderId, o.type, o.limitPrice, o.auxPrice, o.trailingPercent, o.tif, o.outsideRth]),
    [
      ['stp', 'STP', undefined, 95, undefined, 'GTC', false],
      ['stplmt', 'STP LMT', 94, 95, undefined, 'DAY', true],
      ['trail', 'TRAIL', undefined, undefined, 2.5, 'DAY', false],
      ['trail-amt', 'TRAIL', undefined, 1.5, undefined, 'DAY', false],
    ],
  );
});

test('the simulated TWS fills a stop at the open of a gap, leaves a gapped stop-limit unfilled, and exits a trailing stop at its trailed level', async () => {
  const { sim, orders } = await setup();
  const execs = record<[{ orderRef: string; price: number }]>(orders, 'execution');
  orders.placeOrder({ clientOrderId: 'stp', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop', stopPrice: 95 });
  orders.placeOrder({ clientOrderId: 'stplmt', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop_limit', stopPrice: 95, limitPrice: 94 });
  orders.placeOrder({ clientOrderId: 'trail', symbol: 'MSFT', side: 'sell', qty: 10, type: 'trailing_stop', trailAmount: 2, stopPrice: 98 });
  await waitFor(() => sim.placedOrders.length === 3, 'placed');
  await waitFor(() => (sim.orderById(102)?.status ?? '') === 'Submitted', 'acknowledged');

  sim.tradeBar('AAPL', { open: 93, high: 93.5, low: 92, close: 93 });
  sim.tradeBar('MSFT', { open: 100, high: 103, low: 99.5, close: 102 });
  sim.tradeBar('MSFT', { open: 102.5, high: 105, low: 102, close: 104 });
  sim.tradeBar('MSFT', { open: 104, high: 104.2, low: 101, close: 101.5 });
  await waitFor(() => execs.seen.length === 2, 'two fills');
  assert.deepEqual(
    execs.seen.map(([e]) => [e.orderRef, e.price]),
    [
      ['stp', 93],
      ['trail', 103],
    ],
  );
  assert.equal(sim.orderById(101)?.status, 'Submitted', 'the stop-limit triggered on the gap but its limit was never reached');
  sim.tradeBar('AAPL', { open: 93.5, high: 94.2, low: 93.5, close: 94 });
  await waitFor(() => execs.seen.length === 3, 'stop-limit filled');
  assert.deepEqual(execs.seen[2][0].orderRef, 'stplmt');
  assert.equal(execs.seen[2][0].price, 94);
});

test('a bracket is held until its last leg transmits; the children wait for the parent fill, and one exit filling cancels the other', async () => {
  const { sim, orders } = await setup();
  const statuses = record<Status>(orders, 'status');
  const execs = record<[{ orderRef: string; price: number }]>(orders, 'execution');
  const parent = orders.placeOrder({ clientOrderId: 'g', symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 100, transmit: false });
  const tp = orders.placeOrder({ clientOrderId: 'g-tp', symbol: 'AAPL', side: 'sell', qty: 10, type: 'limit', limitPrice: 110, parentId: parent, ocaGroup: 'g', tif: 'gtc', transmit: false });
  await waitFor(() => sim.placedOrders.length === 2, 'two placed');
  assert.equal((await orders.openOrders()).length, 0, 'untransmitted legs are not working yet');
  const sl = orders.placeOrder({ clientOrderId: 'g-sl', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop', stopPrice: 95, parentId: parent, ocaGroup: 'g', tif: 'gtc' });
  await waitFor(() => statuses.seen.some(([id]) => id === sl), 'released');
  assert.deepEqual(
    sim.placedOrders.map((p) => [p.orderRef, p.parentId, p.ocaGroup, p.transmit]),
    [
      ['g', 0, '', false],
      ['g-tp', parent, 'g', false],
      ['g-sl', parent, 'g', true],
    ],
  );
  const open = await orders.openOrders();
  assert.deepEqual(
    open.map((o) => [o.clientOrderId, o.status, o.parentId]),
    [
      ['g', 'Submitted', undefined],
      ['g-tp', 'PreSubmitted', parent],
      ['g-sl', 'PreSubmitted', parent],
    ],
  );

  sim.tradeBar('AAPL', { open: 112, high: 113, low: 111, close: 112 });
  assert.equal(execs.seen.length, 0, 'the take-profit does not work before its parent fills');
  sim.tradeBar('AAPL', { open: 101, high: 101, low: 99.5, close: 100 });
  await waitFor(() => sim.orderById(tp)?.status === 'Submitted' && sim.orderById(sl)?.status === 'Submitted', 'children working');
  sim.tradeBar('AAPL', { open: 108, high: 111, low: 107, close: 110 });
  await waitFor(() => statuses.seen.some(([id, st]) => id === sl && st === 'Cancelled'), 'tp filled, sl cancelled');
  await waitFor(() => execs.seen.length === 2, 'two fills seen');
  assert.deepEqual(
    execs.seen.map(([e]) => [e.orderRef, e.price]),
    [
      ['g', 100],
      ['g-tp', 110],
    ],
  );
});

test('cancelling a bracket parent cancels its waiting children at TWS', async () => {
  const { sim, orders } = await setup();
  const statuses = record<Status>(orders, 'status');
  const parent = orders.placeOrder({ clientOrderId: 'p', symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 50, transmit: false });
  const child = orders.placeOrder({ clientOrderId: 'p-sl', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop', stopPrice: 45, parentId: parent, ocaGroup: 'p' });
  await waitFor(() => statuses.seen.some(([id]) => id === child), 'released');
  orders.cancelOrder(parent);
  await waitFor(() => statuses.seen.some(([id, st]) => id === child && st === 'Cancelled'), 'child cancelled');
  assert.equal(sim.orderById(parent)?.status, 'Cancelled');
});

test('the order client refuses type fields that do not fit the type, naming the field, before anything is sent', async () => {
  const { sim, orders } = await setup();
  const bad = (f: () => unknown, field: RegExp) => assert.throws(f, (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_BAD_INPUT' && field.test(e.message));
  bad(() => orders.placeOrder({ clientOrderId: 'x1', symbol: 'AAPL', side: 'sell', qty: 1, type: 'stop' }), /^stopPrice/);
  bad(() => orders.placeOrder({ clientOrderId: 'x2', symbol: 'AAPL', side: 'sell', qty: 1, type: 'stop_limit', stopPrice: 5 }), /^limitPrice/);
  bad(() => orders.placeOrder({ clientOrderId: 'x3', symbol: 'AAPL', side: 'sell', qty: 1, type: 'trailing_stop', trailAmount: 1, trailPercent: 1 }), /^trailAmount/);
  bad(() => orders.placeOrder({ clientOrderId: 'x4', symbol: 'AAPL', side: 'sell', qty: 1, type: 'market', parentId: -3 }), /^parentId/);
  assert.equal(sim.placedOrders.length, 0);
});
