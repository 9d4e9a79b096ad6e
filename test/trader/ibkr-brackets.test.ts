/**
 * Stops, trailing stops and brackets on the ibkr broker, against the TWS simulator, under a real
 * OrderManager with its LMDB journal: native IB orders (STP, STP LMT, TRAIL, parent/child with
 * transmit and an OCA group), their fills journaled, and a bracket reconciled after a restart
 * without a leg placed twice. Prices are moved with sim.tradeBar; exits are set far from the
 * simulator's own random path so only the chosen bars reach them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { at, bar, closer, idOf, journaled, life, placements, simulator, START, tempDir } from './support.ts';

const cents = (x: number) => Math.round(x * 100) / 100;

test('a stop goes to TWS as STP and fills at the open of a gap; a stop-limit gapped past its limit stays working; a trailing stop exits at its trailed level', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const l = await life(t, sim, tempDir(t), onClose);
  const p = cents(sim.currentPrice('AAPL'));
  await l.orders.onBar(bar('AAPL', START, p));
  const stop: Signal = { kind: 'order', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop', stopPrice: cents(p * 0.7), tif: 'gtc', reason: 'stop' };
  const stopLimit: Signal = { kind: 'order', symbol: 'AAPL', side: 'sell', qty: 10, type: 'stop_limit', stopPrice: cents(p * 0.7), limitPrice: cents(p * 0.69), reason: 'stop limit' };
  const trail: Signal = { kind: 'order', symbol: 'AAPL', side: 'sell', qty: 10, type: 'trailing_stop', trailAmount: cents(p * 0.3), reason: 'trail' };
  for (const [i, s] of [stop, stopLimit, trail].entries()) assert.equal((await l.orders.decide(s, at(i))).action, 'submitted');
  assert.deepEqual(
    sim.placedOrders.map((o) => [o.orderType, o.auxPrice, o.lmtPrice, o.tif]),
    [
      ['STP', cents(p * 0.7), undefined, 'GTC'],
      ['STP LMT', cents(p * 0.7), cents(p * 0.69), 'DAY'],
      ['TRAIL', cents(p * 0.3), undefined, 'DAY'],
    ],
  );
  const open = await l.broker.openOrders();
  assert.deepEqual(
    open.map((o) => [o.type, o.stopPrice, o.limitPrice, o.trailAmount]),
    [
      ['stop', cents(p * 0.7), undefined, undefined],
      ['stop_limit', cents(p * 0.7), cents(p * 0.69), undefined],
      ['trailing_stop', cents(p * 0.7), undefined, cents(p * 0.3)],
    ],
  );

  // Up first: the trail follows the high to 1.2p, so its stop is at 0.9p.
  sim.tradeBar('AAPL', { open: p, high: cents(p * 1.2), low: p, close: cents(p * 1.1) });
  // Then a gap down to 0.6p: the stop fills at the open, the stop-limit's limit is above the bar, the trail fills at the open too.
  sim.tradeBar('AAPL', { open: cents(p * 0.6), high: cents(p * 0.62), low: cents(p * 0.58), close: cents(p * 0.6) });
  const s = await journaled(l, idOf(0), 'filled');
  assert.equal(s.avgFillPrice, cents(p * 0.6));
  const tr = await journaled(l, idOf(2), 'filled');
  assert.equal(tr.avgFillPrice, cents(p * 0.6), 'a gap past the trailed level fills at the open');
  assert.equal(l.storage.orders.get(idOf(1))?.state, 'submitted');
  assert.equal(sim.orderById(Number(l.storage.orders.get(idOf(1))!.brokerOrderId))?.status, 'Submitted', 'triggered, not filled');
});

test('a bracket on IBKR is one parent/child group: exits wait for the entry, then the take-profit fills and TWS cancels the stop-loss by OCA', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const l = await life(t, sim, tempDir(t), onClose);
  const p = cents(sim.currentPrice('AAPL'));
  await l.orders.onBar(bar('AAPL', START, p));
  const entry: Signal = { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 100, type: 'limit', limitPrice: p, reason: 'entry', exits: { takeProfitPct: 40, stopLossPct: 30 } };
  const d = await l.orders.decide(entry, at(0));
  assert.equal(d.action, 'submitted');
  const id = idOf(0);
  const placed = sim.placedOrders;
  assert.deepEqual(
    placed.map((o) => [o.orderRef, o.orderType, o.parentId === 0 ? 0 : 'parent', o.ocaGroup, o.transmit]),
    [
      [id, 'LMT', 0, '', false],
      [`${id}-tp`, 'LMT', 'parent', id, false],
      [`${id}-sl`, 'STP', 'parent', id, true],
    ],
  );
  assert.equal(placed[1].parentId, placed[0].orderId);
  assert.equal(placed[1].lmtPrice, cents(p * 1.4));
  assert.equal(placed[2].auxPrice, cents(p * 0.7));
  for (const leg of [id, `${id}-tp`, `${id}-sl`]) await journaled(l, leg, 'submitted');
  const view = l.storage.orders.all().map((r) => [r.role, r.groupId]);
  assert.deepEqual(view.sort(), [
    ['entry', id],
    ['stop_loss', id],
    ['take_profit', id],
  ]);

  sim.tradeBar('AAPL', { open: cents(p * 1.5), high: cents(p * 1.5), low: cents(p * 1.45), close: cents(p * 1.5) });
  assert.equal(sim.executions().length, 0, 'the take-profit does not work before its entry fills');
  sim.tradeBar('AAPL', { open: p, high: p, low: cents(p * 0.99), close: p });
  await journaled(l, id, 'filled');
  sim.tradeBar('AAPL', { open: cents(p * 1.3), high: cents(p * 1.45), low: cents(p * 1.3), close: cents(p * 1.4) });
  const tp = await journaled(l, `${id}-tp`, 'filled');
  assert.equal(tp.avgFillPrice, cents(p * 1.4));
  await journaled(l, `${id}-sl`, 'cancelled');
  assert.equal(l.orders.position('AAPL'), 0);
  assert.deepEqual(placements(sim), { [id]: 1, [`${id}-tp`]: 1, [`${id}-sl`]: 1 });
});

test('a bracket reconciled after a restart: legs TWS holds are adopted, not placed again, and an exit filled while down closes its sibling', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const dir = tempDir(t);
  const first = await life(t, sim, dir, onClose);
  const p = cents(sim.currentPrice('AAPL'));
  await first.orders.onBar(bar('AAPL', START, p));
  // The order manager's first steps, then the crash: every leg journaled as pending and sent, no answer journaled.
  const now = sim.clock.now();
  const id = idOf(0);
  const base = {
    strategy: 't',
    symbol: 'AAPL',
    qty: 50,
    broker: 'ibkr' as const,
    state: 'pending' as const,
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: START,
    reason: 'x',
    createdAt: now,
    updatedAt: now,
    groupId: id,
  };
  const legs: OrderRecord[] = [
    { ...base, clientOrderId: id, side: 'buy', type: 'limit', limitPrice: p, tif: 'day', role: 'entry' },
    { ...base, clientOrderId: `${id}-tp`, side: 'sell', type: 'limit', limitPrice: cents(p * 1.4), tif: 'gtc', role: 'take_profit' },
    { ...base, clientOrderId: `${id}-sl`, side: 'sell', type: 'trailing_stop', trailPercent: 30, tif: 'gtc', role: 'stop_loss' },
  ];
  for (const r of legs) await first.storage.orders.put(r);
  await first.broker.submitGroup(legs);
  await first.broker.close();
  await first.storage.close();

  const second = await life(t, sim, dir, onClose);
  assert.deepEqual(second.report, { adopted: 3, resubmitted: 0, fillsApplied: 0, closed: 0, discrepancies: [] });
  assert.deepEqual(placements(sim), { [id]: 1, [`${id}-tp`]: 1, [`${id}-sl`]: 1 });
  // While the trader is down again: the entry fills, then the take-profit; TWS cancels the stop.
  await second.broker.close();
  await second.storage.close();
  sim.tradeBar('AAPL', { open: p, high: p, low: cents(p * 0.99), close: p });
  sim.tradeBar('AAPL', { open: cents(p * 1.3), high: cents(p * 1.45), low: cents(p * 1.3), close: cents(p * 1.4) });

  const third = await life(t, sim, dir, onClose);
  assert.equal(third.report.fillsApplied, 2);
  assert.equal(third.report.closed, 1, 'the stop-loss TWS cancelled by OCA');
  assert.equal(third.report.resubmitted, 0);
  assert.equal(third.storage.orders.get(`${id}-sl`)?.state, 'cancelled');
  assert.equal(third.orders.position('AAPL'), 0);
  assert.deepEqual(placements(sim), { [id]: 1, [`${id}-tp`]: 1, [`${id}-sl`]: 1 });
});

test('a bracket whose exits never reached TWS is completed after a restart: only the missing legs are placed, linked to the entry TWS holds', async (t) => {
  const onClose = closer(t);
  const sim = await simulator(onClose);
  const dir = tempDir(t);
  const first = await life(t, sim, dir, onClose);
  const p = cents(sim.currentPrice('AAPL'));
  const now = sim.clock.now();
  const id = idOf(0);
  const base = {
    strategy: 't',
    symbol: 'AAPL',
    qty: 50,
    broker: 'ibkr' as const,
    state: 'pending' as const,
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: START,
    reason: 'x',
    createdAt: now,
    updatedAt: now,
    groupId: id,
  };
  const entry: OrderRecord = { ...base, clientOrderId: id, side: 'buy', type: 'limit', limitPrice: cents(p * 0.5), tif: 'day', role: 'entry' };
  const exits: OrderRecord[] = [
    { ...base, clientOrderId: `${id}-tp`, side: 'sell', type: 'limit', limitPrice: cents(p * 1.4), tif: 'gtc', role: 'take_profit' },
    { ...base, clientOrderId: `${id}-sl`, side: 'sell', type: 'stop', stopPrice: cents(p * 0.3), tif: 'gtc', role: 'stop_loss' },
  ];
  for (const r of [...exits, entry]) await first.storage.orders.put(r);
  await first.broker.submit({ ...entry, groupId: undefined, role: undefined }); // only the entry got out
  await first.broker.close();
  await first.storage.close();

  const second = await life(t, sim, dir, onClose);
  assert.equal(second.report.adopted, 1);
  assert.equal(second.report.resubmitted, 2);
  assert.deepEqual(placements(sim), { [id]: 1, [`${id}-tp`]: 1, [`${id}-sl`]: 1 });
  const [e, tp, sl] = sim.placedOrders;
  assert.equal(tp.parentId, e.orderId);
  assert.equal(sl.parentId, e.orderId);
  assert.deepEqual([tp.transmit, sl.transmit], [false, true]);
  for (const leg of [`${id}-tp`, `${id}-sl`]) await journaled(second, leg, 'submitted');
});
