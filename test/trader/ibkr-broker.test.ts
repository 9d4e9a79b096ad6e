/**
 * The ibkr broker against the TWS simulator (an unmodified @stoqey/ib client on a real socket),
 * under a real OrderManager with its LMDB journal and a RiskEngine. The simulator's ManualClock is
 * the clock of everything here, so fill times and timers agree, and simulated time passes only when
 * the test moves it (`sim.advanceUntil`, `journaled`); the broker's own timeouts are its defaults.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReconcileReport } from '../../src/actors/trader/order-manager.ts';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import type { TwsSimulator } from '../fakes/tws/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { at, bar, CLIENT_ID, closer, connect, idOf, journaled, type Life, life, MemoryLog, order, placements, simulator, START, storageAt, tempDir } from './support.ts';

/** Marks `symbol`'s last price (risk needs one to size a market order's notional). */
async function price(l: Life, sim: TwsSimulator, symbol: string): Promise<void> {
  await l.orders.onBar(bar(symbol, START, sim.currentPrice(symbol)));
}

function pending(id: string, o: Pick<OrderRecord, 'symbol' | 'side' | 'qty' | 'type'> & { limitPrice?: number }, now: number): OrderRecord {
  return order(id, { broker: 'ibkr', barStart: START, createdAt: now, updatedAt: now, ...o });
}

function simPosition(sim: TwsSimulator, symbol: string): number {
  return sim.executions().reduce((q, e) => (e.contract.symbol === symbol ? q + (e.side === 'BOT' ? e.shares : -e.shares) : q), 0);
}

test('a market order goes out with its client order id as orderRef, is acknowledged, filled, and journaled with its commission', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const l = await life(t, sim, tempDir(t), onClose);
  await price(l, sim, 'AAPL');

  const buy: Signal = { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 300, type: 'market', reason: 'entry' };
  const decision = await l.orders.decide(buy, at(0));
  assert.equal(decision.action, 'submitted');
  const record = await journaled(l, idOf(0), 'filled');

  assert.equal(sim.placedOrders.length, 1);
  const placed = sim.placedOrders[0];
  assert.deepEqual(
    { orderRef: placed.orderRef, action: placed.action, qty: placed.totalQuantity, type: placed.orderType, clientId: placed.clientId },
    { orderRef: idOf(0), action: 'BUY', qty: 300, type: 'MKT', clientId: CLIENT_ID },
  );
  const [exec] = sim.executions();
  assert.equal(exec.commission, 1.5, '300 shares at 0.005 a share');
  assert.equal(record.brokerOrderId, String(placed.orderId));
  // The simulator sends the commission report after the execution: the fill waited for it.
  assert.deepEqual(record.fills, [{ execId: exec.execId, qty: 300, price: exec.price, time: Math.floor(exec.at / 1000) * 1000, commission: 1.5 }]);
  assert.equal(record.commission, 1.5);
  assert.equal(l.orders.position('AAPL'), 300);
  assert.deepEqual(
    l.events.map((e) => e.type),
    ['accepted', 'fill'],
  );
  assert.deepEqual(await l.broker.positions(), { AAPL: { qty: 300, avgPrice: exec.price } });
  const fills = await l.broker.executions(START);
  assert.deepEqual(
    fills.map((f) => [f.execId, f.clientOrderId, f.brokerOrderId, f.side, f.qty, f.commission]),
    [[exec.execId, idOf(0), String(placed.orderId), 'buy', 300, 1.5]],
  );
  assert.equal(l.broker.stats().fillsWithoutCommission, 0);
});

test('a resting limit order is listed as open, and cancel moves it to cancelled at TWS and in the journal', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const l = await life(t, sim, tempDir(t), onClose);

  const rest: Signal = { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 1, reason: 'far below the market' };
  assert.equal((await l.orders.decide(rest, at(0))).action, 'submitted');
  const submitted = await journaled(l, idOf(0), 'submitted');
  const orderId = sim.placedOrders[0].orderId;
  assert.equal(submitted.brokerOrderId, String(orderId));
  assert.deepEqual(await l.broker.openOrders(), [
    { clientOrderId: idOf(0), brokerOrderId: String(orderId), symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 1, tif: 'day', filledQty: 0, state: 'submitted' },
  ]);

  await l.broker.cancel(idOf(0));
  const cancelled = await journaled(l, idOf(0), 'cancelled');
  assert.equal(cancelled.rejectReason, 'cancel requested');
  assert.equal(sim.orderById(orderId)?.status, 'Cancelled');
  assert.deepEqual(await l.broker.openOrders(), []);
  assert.deepEqual(l.orders.openOrders(), []);

  await l.broker.cancel(idOf(0));
  await l.broker.cancel('bk-t-AAPL-unknown-0');
  assert.equal(sim.countRequests('CANCEL_ORDER'), 1, 'a final or unknown order is not cancelled again');
});

test("an order IB refuses is journaled as rejected with IB's reason", async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  sim.setMarketDataError('ZZZZ', 200);
  const l = await life(t, sim, tempDir(t), onClose);

  const sig: Signal = { kind: 'order', symbol: 'ZZZZ', side: 'buy', qty: 5, type: 'limit', limitPrice: 10, reason: 'unknown contract' };
  const decision = await l.orders.decide(sig, at(0));
  assert.equal(decision.action, 'rejected');
  const record = await journaled(l, idOf(0, 'ZZZZ'), 'rejected');
  assert.match(record.rejectReason ?? '', /IB 200/);
  // A resubmit of the refused id does not reach TWS again.
  await assert.rejects(l.broker.submit(record), { code: 'BROKER_REJECTED' });
  assert.equal(sim.countRequests('PLACE_ORDER'), 1);
});

test('submitting one client order id twice, at once, later, or from a fresh connection places one order at TWS', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const dir = tempDir(t);
  const first = await life(t, sim, dir, onClose);
  const now = sim.clock.now();
  const resting = pending('bk-t-AAPL-rest-0', { symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 1 }, now);
  const filled = pending('bk-t-AAPL-mkt-0', { symbol: 'AAPL', side: 'sell', qty: 20, type: 'market' }, now);

  const [a, b] = await Promise.all([first.broker.submit(resting), first.broker.submit(resting)]);
  assert.equal(a.brokerOrderId, b.brokerOrderId);
  assert.deepEqual(await first.broker.submit(resting), a);
  const m = await first.broker.submit(filled);
  await waitFor(() => sim.executions().length === 1, 'the market order filled at TWS');
  assert.deepEqual(await first.broker.submit(filled), m);
  assert.deepEqual(placements(sim), { [resting.clientOrderId]: 1, [filled.clientOrderId]: 1 });

  await first.broker.close();
  await first.storage.close();
  const second = await life(t, sim, dir, onClose);
  // The resting order is in TWS's open orders, the filled one in its executions.
  assert.deepEqual(await second.broker.submit(resting), a);
  assert.deepEqual(await second.broker.submit(filled), m);
  assert.deepEqual(placements(sim), { [resting.clientOrderId]: 1, [filled.clientOrderId]: 1 });
  assert.equal(second.broker.stats().placed, 0);
});

test('after a crash at every point around sending, a fresh broker and order manager reconcile with TWS and place nothing twice', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const dir = tempDir(t);

  // First life: each order is journaled as pending (the order manager's first step), then the
  // process dies at a different point. The broker is driven alone, so no answer reaches the journal.
  const storage = storageAt(t, dir);
  const broker = await connect(sim, new MemoryLog(), onClose);
  const now = sim.clock.now();
  const sentFilled = pending('bk-t-AAPL-b-0', { symbol: 'AAPL', side: 'buy', qty: 200, type: 'market' }, now);
  const sentResting = pending('bk-t-AAPL-c1-0', { symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 1 }, now);
  const sentFilledWhileDown = pending('bk-t-MSFT-c2-0', { symbol: 'MSFT', side: 'buy', qty: 50, type: 'limit', limitPrice: 1 }, now);
  const neverSent = pending('bk-t-AAPL-d-0', { symbol: 'AAPL', side: 'buy', qty: 30, type: 'limit', limitPrice: 2 }, now);
  for (const r of [sentFilled, sentResting, sentFilledWhileDown, neverSent]) await storage.orders.put(r);
  const ids: Record<string, string> = {};
  for (const r of [sentFilled, sentResting, sentFilledWhileDown]) ids[r.clientOrderId] = (await broker.submit(r)).brokerOrderId;
  await waitFor(() => sim.executions().length === 1, 'the market order filled at TWS');
  // The crash: the socket and the storage go away with nothing flushed or cancelled.
  await broker.close();
  await storage.close();
  sim.fillOrder(Number(ids[sentFilledWhileDown.clientOrderId]), 0.5);

  const second = await life(t, sim, dir, onClose);
  assert.deepEqual(second.report, { adopted: 1, resubmitted: 1, fillsApplied: 2, closed: 0, discrepancies: [] });
  assert.deepEqual(placements(sim), {
    [sentFilled.clientOrderId]: 1,
    [sentResting.clientOrderId]: 1,
    [sentFilledWhileDown.clientOrderId]: 1,
    [neverSent.clientOrderId]: 1,
  });

  const execs = new Map(sim.executions().map((e) => [e.orderRef, e]));
  for (const r of [sentFilled, sentFilledWhileDown]) {
    const j = await journaled(second, r.clientOrderId, 'filled');
    const e = execs.get(r.clientOrderId)!;
    assert.deepEqual(
      j.fills.map((f) => [f.execId, f.qty, f.price, f.commission]),
      [[e.execId, e.shares, e.price, e.commission]],
    );
    assert.equal(j.brokerOrderId, String(e.orderId));
  }
  const adopted = await journaled(second, sentResting.clientOrderId, 'submitted');
  assert.equal(adopted.brokerOrderId, ids[sentResting.clientOrderId]);
  await journaled(second, neverSent.clientOrderId, 'submitted');

  const held = await second.broker.positions();
  for (const symbol of ['AAPL', 'MSFT']) {
    assert.equal(second.orders.position(symbol), simPosition(sim, symbol), `${symbol}: journal and TWS agree`);
    assert.equal(held[symbol]?.qty, simPosition(sim, symbol), `${symbol}: broker positions and TWS agree`);
  }
  assert.equal(second.orders.position('AAPL'), 200);
  assert.equal(second.orders.position('MSFT'), 50);

  const again = await second.orders.reconcile();
  assert.deepEqual(again, { adopted: 0, resubmitted: 0, fillsApplied: 0, closed: 0, discrepancies: [] });
  assert.equal(sim.placedOrders.length, 4, 'a second reconcile sends nothing');
});

test('after TWS drops the connection, the broker reconnects, calls onReconnect, and reconcile brings in a fill made while down and sends an order refused while down, once', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  // The reconnect waits 10 simulated seconds, which pass only when the test moves the clock: a window to submit while down.
  const l = await life(t, sim, tempDir(t), onClose, 10_000);
  const reconciled: ReconcileReport[] = [];
  l.broker.onReconnect(() => void l.orders.reconcile().then((r) => reconciled.push(r)));
  await price(l, sim, 'AAPL');

  const rest: Signal = { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 40, type: 'limit', limitPrice: 1, reason: 'rests' };
  assert.equal((await l.orders.decide(rest, at(0))).action, 'submitted');
  await journaled(l, idOf(0), 'submitted');
  const restingId = sim.placedOrders[0].orderId;

  sim.dropClients();
  sim.fillOrder(restingId, 0.9); // nobody is connected to hear it
  await waitFor(() => l.broker.stats().connection === 'disconnected', 'the broker sees the drop');
  const buy: Signal = { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 60, type: 'market', reason: 'while down' };
  const whileDown = await l.orders.decide(buy, at(1));
  assert.equal(whileDown.action, 'unsent');
  assert.equal(l.storage.orders.get(idOf(1))?.state, 'pending');
  assert.equal(sim.placedOrders.length, 1);

  await sim.advanceUntil(() => reconciled.length > 0, 'a reconcile after the reconnect');
  const filledWhileDown = await journaled(l, idOf(0), 'filled');
  const sentAfter = await journaled(l, idOf(1), 'filled');
  assert.equal(reconciled[0].resubmitted, 1);
  assert.equal(l.broker.stats().reconnects, 1);
  assert.deepEqual(placements(sim), { [idOf(0)]: 1, [idOf(1)]: 1 });
  const execs = new Map(sim.executions().map((e) => [e.orderRef, e]));
  assert.deepEqual(
    filledWhileDown.fills.map((f) => [f.execId, f.price, f.commission]),
    [[execs.get(idOf(0))!.execId, 0.9, 1]],
  );
  assert.deepEqual(
    sentAfter.fills.map((f) => [f.execId, f.commission]),
    [[execs.get(idOf(1))!.execId, 1]],
  );
  assert.equal(l.orders.position('AAPL'), 100);
  assert.equal(simPosition(sim, 'AAPL'), 100);
});

test('an order written to a socket TWS had already closed is refused as unavailable, and sent once after the reconnect', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const broker = await connect(sim, new MemoryLog(), onClose);
  const record = pending('bk-t-AAPL-lost-0', { symbol: 'AAPL', side: 'buy', qty: 10, type: 'limit', limitPrice: 1 }, sim.clock.now());

  sim.dropClients();
  // The broker has not heard of the drop yet: the order goes out on the dead socket.
  await assert.rejects(broker.submit(record), { code: 'BROKER_UNAVAILABLE' });
  assert.equal(broker.stats().placed, 1);
  assert.equal(sim.placedOrders.length, 0, 'TWS never read it');

  await sim.advanceUntil(() => broker.stats().reconnects === 1, 'the reconnect');
  await broker.whenSynced();
  const again = await broker.submit(record);
  assert.deepEqual(placements(sim), { [record.clientOrderId]: 1 });
  assert.equal(again.brokerOrderId, String(sim.placedOrders[0].orderId));
  assert.deepEqual(await broker.submit(record), again);
  assert.equal(sim.placedOrders.length, 1);
});
