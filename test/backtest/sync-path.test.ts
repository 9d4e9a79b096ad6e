/**
 * The backtest's synchronous order path is the live one: the OrderManager and PaperBroker on the
 * in-memory journal and checkpoint store (durable on return, `putNow`) decide, send, reject and
 * fill on return, and leave the same journal, broker state and decisions as the same objects on
 * stores that only answer with promises (as the disk stores do, live).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Decision } from '../../src/actors/trader/order-manager.ts';
import { OrderManager } from '../../src/actors/trader/order-manager.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import { RiskEngine } from '../../src/actors/trader/risk.ts';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import { MemoryCheckpoints, MemoryJournal } from '../../src/backtest/memory-stores.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import type { CheckpointStore, OrderJournal, OrderRecord } from '../../src/storage/types.ts';
import { closesToBars, MIN, T0 } from './support.ts';

const SILENT = { info() {}, warn() {}, error() {}, isLevelEnabled: () => false };
const RISK = { maxPositionPerSymbol: 1e6, maxOrderNotional: 1e9, maxGrossExposure: 1e12, maxDailyLoss: 1e12, maxOrdersPerMinute: 1000, allowedSessions: ['always' as const] };

/** The memory journal as a disk journal looks: writes answered by a promise only. */
class PromiseJournal implements OrderJournal {
  private readonly inner = new MemoryJournal();
  put(r: OrderRecord): Promise<void> {
    return this.inner.put(r);
  }
  get(id: string) {
    return this.inner.get(id);
  }
  all() {
    return this.inner.all();
  }
  open() {
    return this.inner.open();
  }
}

class PromiseCheckpoints implements CheckpointStore {
  private readonly inner = new MemoryCheckpoints();
  get<T>(key: string) {
    return this.inner.get<T>(key);
  }
  put<T>(key: string, value: T): Promise<void> {
    return this.inner.put(key, value);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
}

async function session(journal: OrderJournal, checkpoints: CheckpointStore) {
  const clock = new ManualClock(T0);
  const broker = new PaperBroker({ checkpoints, clock, startingCash: 100_000, slippageBps: 10, commissionPerShare: 0.005, minCommission: 1 });
  const orders = new OrderManager({ journal, broker, risk: new RiskEngine(RISK, new MarketCalendar()), clock, log: SILENT });
  await orders.start();
  const bars = closesToBars('QQQ', T0, [100, 101, 102, 103]);
  const target = (qty: number): Signal => ({ kind: 'target', symbol: 'QQQ', targetQty: qty, reason: `target ${qty}` });
  // A limit order without its price: the paper broker refuses it.
  const bad: Signal = { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 5, type: 'limit', reason: 'no limit price' } as Signal;
  const answers: Array<{ onReturn: boolean; decision: Decision }> = [];
  const decide = async (s: Signal, i: number, index = 0) => {
    const d = orders.decideNow(s, 'test', bars[i].start, index);
    answers.push({ onReturn: !(d instanceof Promise), decision: await d });
  };
  const steps: boolean[] = [];
  const step = async (i: number) => {
    clock.set(bars[i].start + MIN);
    const p = orders.step(bars[i]);
    steps.push(p === undefined);
    await p;
  };
  await step(0);
  await decide(target(10), 0);
  await decide(bad, 0, 1);
  await step(1);
  const heldAfterFill = orders.position('QQQ');
  await decide(target(0), 1);
  await step(2);
  await orders.idle();
  return { answers, steps, heldAfterFill, journal: journal.all(), cash: broker.cash(), position: orders.position('QQQ') };
}

test('on in-memory stores the live order manager and paper broker answer on return, with the journal and cash of the promise path', async () => {
  const now = await session(new MemoryJournal(), new MemoryCheckpoints());
  const later = await session(new PromiseJournal(), new PromiseCheckpoints());

  assert.deepEqual(
    now.answers.map((a) => [a.onReturn, a.decision.action]),
    [
      [true, 'submitted'],
      [true, 'rejected'],
      [true, 'submitted'],
    ],
  );
  // Bars with a fill due are done on return too: the position moved before step() returned.
  assert.deepEqual(now.steps, [true, true, true]);
  assert.equal(now.heldAfterFill, 10);
  assert.deepEqual(
    later.answers.map((a) => [a.onReturn, a.decision.action]),
    [
      [false, 'submitted'],
      [false, 'rejected'],
      [false, 'submitted'],
    ],
  );
  assert.deepEqual(later.steps, [true, false, false]);

  assert.deepEqual(
    now.answers.map((a) => a.decision),
    later.answers.map((a) => a.decision),
  );
  assert.deepEqual(now.journal, later.journal);
  assert.deepEqual(
    now.journal.map((r) => [r.state, r.side, r.filledQty, r.avgFillPrice]),
    [
      ['filled', 'buy', 10, 100.1],
      ['rejected', 'buy', 0, 0],
      ['filled', 'sell', 10, 100.899],
    ],
  );
  assert.equal(now.cash, later.cash);
  assert.equal(now.position, 0);
  assert.equal(later.position, 0);
});

test("regression: the paper broker's on-return methods are the class's, not closures that keep a finished run reachable", () => {
  // A closure per broker was kept by V8's call-site feedback for the young-generation GC, and with
  // it the finished run's broker, order manager and orders (promoted, then a major GC's work).
  const make = () => new PaperBroker({ checkpoints: new MemoryCheckpoints(), clock: new ManualClock(T0), startingCash: 1000 });
  const a = make();
  const b = make();
  assert.ok(a.submitNow !== undefined && a.submitGroupNow !== undefined && a.onBarNow !== undefined);
  assert.equal(a.submitNow, b.submitNow);
  assert.equal(a.submitGroupNow, b.submitGroupNow);
  assert.equal(a.onBarNow, b.onBarNow);
});
