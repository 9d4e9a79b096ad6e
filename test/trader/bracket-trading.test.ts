/**
 * Protective exits through the whole trading stack (strategy, risk, order manager, journal on
 * LMDB, paper broker): brackets attached from the settings, one-cancels-other, a strategy's own
 * close replacing the exits, the daily-loss headroom, and a crash between an exit's fill and its
 * sibling's cancel reaching the journal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BrokerEvent } from '../../src/actors/trader/broker.ts';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { bar, MIN, rig, scripted, T0 } from './support.ts';
import { PaperStandIn } from '../helpers/paper-stand-in.ts';

const target = (qty: number): Signal => ({ kind: 'target', symbol: 'QQQ', targetQty: qty, reason: `target ${qty}` });
const ID = clientOrderId('s', 'QQQ', T0, 0);
const RANK: Record<string, number> = { entry: 0, take_profit: 1, stop_loss: 2 };
const legs = (records: OrderRecord[]) =>
  records
    .filter((r) => r.groupId === ID)
    .sort((a, b) => RANK[a.role!] - RANK[b.role!])
    .map((r) => [r.clientOrderId, r.role, r.type, r.limitPrice ?? r.stopPrice ?? null, r.state]);

test('configured exits make every entry a bracket; the take-profit fills and the stop-loss is cancelled in the same bar', async (t) => {
  const r = await rig(t, { strategy: scripted('s', new Map([[T0, target(100)]])), exits: { takeProfitPct: 4, stopLossPct: 2 } });
  await r.feed([bar('QQQ', T0, 100)]);
  assert.deepEqual(legs(r.storage.orders.all()), [
    [ID, 'entry', 'market', null, 'submitted'],
    [`${ID}-tp`, 'take_profit', 'limit', 104, 'submitted'],
    [`${ID}-sl`, 'stop_loss', 'stop', 98, 'submitted'],
  ]);
  await r.feed([bar('QQQ', T0 + MIN, 101, { open: 100, low: 99.5, high: 103 })]);
  assert.equal(r.orders.position('QQQ'), 100);
  await r.feed([bar('QQQ', T0 + 2 * MIN, 104.5, { open: 101, low: 100.5, high: 105 })]);
  assert.deepEqual(legs(r.storage.orders.all()), [
    [ID, 'entry', 'market', null, 'filled'],
    [`${ID}-tp`, 'take_profit', 'limit', 104, 'filled'],
    [`${ID}-sl`, 'stop_loss', 'stop', 98, 'cancelled'],
  ]);
  assert.equal(r.orders.position('QQQ'), 0);
  assert.deepEqual(r.orders.openOrders(), []);
});

test("an exit doesn't make the target strategy buy again while the position is held, and a signal's exits: null sends a plain order", async (t) => {
  const noExits: Signal = { kind: 'order', symbol: 'SPY', side: 'buy', qty: 10, type: 'market', reason: 'plain', exits: null };
  const r = await rig(t, {
    strategy: scripted(
      's',
      new Map<number, Signal | Signal[]>([
        [T0, [target(100), noExits]],
        [T0 + MIN, target(100)],
      ]),
    ),
    exits: { stopLossPct: 5 },
  });
  await r.feed([bar('QQQ', T0, 100), bar('SPY', T0, 500)]);
  await r.feed([bar('QQQ', T0 + MIN, 100), bar('SPY', T0 + MIN, 500)]);
  assert.equal(r.orders.position('QQQ'), 100);
  const records = r.storage.orders.all();
  assert.equal(records.filter((o) => o.symbol === 'QQQ' && o.role === 'entry').length, 1, 'the working stop-loss is not counted against the target');
  assert.deepEqual(
    records.filter((o) => o.symbol === 'SPY').map((o) => [o.role ?? null, o.groupId ?? null]),
    [[null, null]],
  );
});

test("a strategy's own closing order cancels the bracket's exits first, so the position is closed once", async (t) => {
  const r = await rig(t, {
    strategy: scripted(
      's',
      new Map([
        [T0, target(100)],
        [T0 + 2 * MIN, target(0)],
      ]),
    ),
    exits: { takeProfitPct: 10, stopLossPct: 2 },
  });
  await r.feed([bar('QQQ', T0, 100), bar('QQQ', T0 + MIN, 100), bar('QQQ', T0 + 2 * MIN, 100)]);
  const byRole = Object.fromEntries(
    r.storage.orders
      .all()
      .filter((o) => o.groupId === ID)
      .map((o) => [o.role, o]),
  );
  assert.equal(byRole.take_profit.state, 'cancelled');
  assert.equal(byRole.stop_loss.state, 'cancelled');
  assert.equal(r.orders.position('QQQ'), 100, 'the close is working');
  await r.feed([bar('QQQ', T0 + 3 * MIN, 90, { open: 99, low: 90, high: 111 })]);
  assert.equal(r.orders.position('QQQ'), 0);
  assert.equal((await r.broker.executions()).length, 2, 'the entry and the strategy close; neither exit');
});

test('a bracket whose stop-loss could lose more than the daily-loss headroom is refused, and one within it goes', async (t) => {
  const big: Signal = { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 100, type: 'limit', limitPrice: 100, reason: 'big', exits: { stopLossPct: 2 } };
  const small: Signal = { ...big, qty: 50, reason: 'small' };
  const r = await rig(t, {
    strategy: scripted(
      's',
      new Map([
        [T0, big],
        [T0 + MIN, small],
      ]),
    ),
    risk: { maxDailyLoss: 150 },
  });
  await r.feed([bar('QQQ', T0, 100), bar('QQQ', T0 + MIN, 100.5, { low: 100.2 })]);
  const refusal = r.orders.recentRefusals()[0];
  assert.equal(refusal.rule, 'max_daily_loss');
  assert.match(refusal.reason, /could lose \$200\.00 if its stop-loss fires/);
  assert.deepEqual(
    r.storage.orders.all().map((o) => [o.qty, o.role]),
    [
      [50, 'entry'],
      [50, 'stop_loss'],
    ],
  );
});

/** The real paper broker whose process "dies" once `dead` is set: the broker goes on, the trader hears nothing. */
class DeafBroker extends PaperStandIn {
  dead = false;
  private listeners: Array<(e: BrokerEvent) => void> = [];
  constructor(paper: PaperBroker) {
    super(paper);
    paper.onEvent((e) => {
      if (!this.dead) for (const cb of this.listeners) cb(e);
    });
  }
  submitGroup(orders: readonly OrderRecord[]) {
    return this.paper.submitGroup(orders);
  }
  override onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }
}

test('a crash between a take-profit fill and its stop-loss cancel reaching the journal: the restart takes the fill, closes the stop, and never exits twice', async (t) => {
  let deaf: DeafBroker | undefined;
  const script = () => scripted('s', new Map([[T0, target(100)]]));
  const first = await rig(t, { strategy: script(), exits: { takeProfitPct: 4, stopLossPct: 2 }, broker: (paper) => (deaf = new DeafBroker(paper)) });
  await first.feed([bar('QQQ', T0, 100), bar('QQQ', T0 + MIN, 100.5, { open: 100, low: 99.5, high: 101 })]);
  deaf!.dead = true;
  await first.feed([bar('QQQ', T0 + 2 * MIN, 104.5, { open: 101, low: 100.5, high: 105 })]);
  assert.equal(first.storage.orders.get(`${ID}-tp`)?.state, 'submitted', 'the journal never heard of the fill');
  assert.equal(first.storage.orders.get(`${ID}-sl`)?.state, 'submitted', 'nor of the cancel');
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script(), exits: { takeProfitPct: 4, stopLossPct: 2 } });
  assert.equal(second.report.fillsApplied, 1);
  assert.equal(second.report.closed, 1);
  assert.equal(second.report.resubmitted, 0, 'the stop-loss is not sent again');
  assert.deepEqual(second.report.discrepancies, []);
  assert.equal(second.storage.orders.get(`${ID}-tp`)?.state, 'filled');
  assert.equal(second.storage.orders.get(`${ID}-sl`)?.state, 'cancelled');
  // The price then falls through the old stop: nothing happens.
  await second.feed([bar('QQQ', T0 + 3 * MIN, 95, { open: 99, low: 94, high: 99 })]);
  assert.equal(second.orders.position('QQQ'), 0);
  assert.deepEqual(
    (await second.broker.executions()).map((f) => f.clientOrderId),
    [ID, `${ID}-tp`],
  );
});

test('exits journaled without their entry (a crash between the writes) are closed by reconcile and never sent', async (t) => {
  const first = await rig(t, { strategy: scripted('s', new Map()) });
  const base = {
    strategy: 's',
    symbol: 'QQQ',
    qty: 100,
    broker: 'paper' as const,
    state: 'pending' as const,
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: T0,
    reason: 'x',
    createdAt: T0,
    updatedAt: T0,
  };
  await first.storage.orders.put({ ...base, clientOrderId: `${ID}-sl`, side: 'sell', type: 'stop', stopPrice: 98, tif: 'gtc', groupId: ID, role: 'stop_loss' });
  await first.storage.close();
  const second = await rig(t, { dir: first.dir, strategy: scripted('s', new Map()) });
  assert.equal(second.report.closed, 1);
  assert.equal(second.broker.stats().submitCalls, 0);
  assert.match(second.storage.orders.get(`${ID}-sl`)?.rejectReason ?? '', /never reached the journal/);
});

test('the kill switch cancels a bracket whole and flattens the position it protected', async (t) => {
  const r = await rig(t, { strategy: scripted('s', new Map([[T0, target(100)]])), exits: { takeProfitPct: 10, stopLossPct: 5 } });
  await r.feed([bar('QQQ', T0, 100), bar('QQQ', T0 + MIN, 100)]);
  assert.equal(r.orders.position('QQQ'), 100);
  const report = await r.orders.kill({ flatten: true });
  assert.deepEqual(report.errors, []);
  assert.deepEqual(
    legs(r.storage.orders.all()).map((l) => [l[1], l[4]]),
    [
      ['entry', 'filled'],
      ['take_profit', 'cancelled'],
      ['stop_loss', 'cancelled'],
    ],
  );
  assert.equal(report.flatten[0]?.action, 'submitted');
  await r.feed([bar('QQQ', T0 + 3 * MIN, 80, { open: 99, low: 80, high: 120 })]);
  assert.equal(r.orders.position('QQQ'), 0, 'flattened once; no exit fired after the kill');
  assert.equal((await r.broker.executions()).length, 2);
});
