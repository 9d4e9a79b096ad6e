/**
 * Crash-safety without threads: a run is cut at one point by a broker wrapper that "dies" there
 * (its submit throws after or instead of reaching the real paper broker, or its fill events never
 * arrive), the storage is closed, and a fresh PaperBroker and OrderManager are started over the
 * same LMDB directory, as a restarted trader would be.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BrokerEvent } from '../../src/actors/trader/broker.ts';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import type { OrderJournal, OrderRecord, OrderState } from '../../src/storage/types.ts';
import { bar, MIN, rig, scripted, T0 } from './support.ts';
import { PaperStandIn } from '../helpers/paper-stand-in.ts';

type CutPoint = 'before-send' | 'after-send' | 'before-fill-reaches-journal';

/** The real paper broker, with the process "dying" at one point. */
class DyingBroker extends PaperStandIn {
  journalStateAtSubmit: OrderState | undefined;
  private listeners: Array<(e: BrokerEvent) => void> = [];
  constructor(
    paper: PaperBroker,
    private readonly journal: OrderJournal,
    private readonly cut: CutPoint,
  ) {
    super(paper);
    paper.onEvent((e) => {
      // A dead process hears nothing: not the acknowledgement, not the fill.
      if (this.cut === 'after-send' || (this.cut === 'before-fill-reaches-journal' && e.type === 'fill')) return;
      for (const cb of this.listeners) cb(e);
    });
  }
  override async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    this.journalStateAtSubmit = this.journal.get(order.clientOrderId)?.state;
    if (this.cut === 'before-send') throw new Error('process died before the order left');
    const ack = await this.paper.submit(order);
    if (this.cut === 'after-send') throw new Error('process died before the acknowledgement was journaled');
    return ack;
  }
  override onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }
}

const BUY: Signal = { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 100, type: 'market', reason: 'entry' };
const ID = clientOrderId('s', 'QQQ', T0, 0);
const script = () => scripted('s', new Map([[T0, BUY]]));

async function crashedRun(t: Parameters<typeof rig>[0], cut: CutPoint) {
  let dying: DyingBroker | undefined;
  const first = await rig(t, { strategy: script(), broker: (paper, storage) => (dying = new DyingBroker(paper, storage.orders, cut)) });
  await first.feed([bar('QQQ', T0, 10)]);
  return { first, dying: dying! };
}

test('crash before send: the journal holds the order as pending before the broker is called, and the restart sends it exactly once', async (t) => {
  const { first, dying } = await crashedRun(t, 'before-send');
  assert.equal(dying.journalStateAtSubmit, 'pending', 'journaled before submit');
  assert.equal(first.loop.status().lastDecisions.QQQ.action, 'unsent');
  assert.equal(first.storage.orders.get(ID)?.state, 'pending');
  assert.equal(first.broker.stats().accepted, 0);
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(second.report.resubmitted, 1);
  assert.equal(second.broker.stats().submitCalls, 1);
  assert.equal(second.storage.orders.get(ID)?.state, 'submitted');
  await second.orders.reconcile();
  assert.equal(second.broker.stats().submitCalls, 1, 'a second reconcile sends nothing');
  await second.feed([bar('QQQ', T0 + MIN, 10)]);
  assert.equal(second.orders.position('QQQ'), 100);
  await second.storage.close();

  const third = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(third.broker.stats().submitCalls, 0);
  assert.equal(third.broker.stats().accepted, 1, 'one order ever reached the broker');
  assert.equal(third.orders.position('QQQ'), 100);
});

test('crash after send: the restart adopts the order the broker already has and does not submit it again', async (t) => {
  const { first } = await crashedRun(t, 'after-send');
  assert.equal(first.storage.orders.get(ID)?.state, 'pending');
  assert.equal(first.broker.stats().accepted, 1);
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(second.report.adopted, 1);
  assert.equal(second.report.resubmitted, 0);
  assert.equal(second.broker.stats().submitCalls, 0, 'no second submit');
  const adopted = second.storage.orders.get(ID)!;
  assert.equal(adopted.state, 'submitted');
  assert.equal(adopted.brokerOrderId, 'paper-1');
  await second.feed([bar('QQQ', T0 + MIN, 10)]);
  assert.equal(second.orders.position('QQQ'), 100);
  assert.equal(second.broker.stats().accepted, 1);
});

test('crash after send, with the fill happening while the trader was down: the restart takes the fill and sends nothing', async (t) => {
  const { first } = await crashedRun(t, 'after-send');
  await first.feed([bar('QQQ', T0 + MIN, 10)]);
  assert.equal(first.storage.orders.get(ID)?.state, 'pending');
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(second.report.fillsApplied, 1);
  assert.equal(second.broker.stats().submitCalls, 0);
  assert.equal(second.storage.orders.get(ID)?.state, 'filled');
  assert.equal(second.orders.position('QQQ'), 100);
});

test('crash after a fill: the restart applies the fill the journal lacks, once, however often it reconciles', async (t) => {
  const { first } = await crashedRun(t, 'before-fill-reaches-journal');
  await first.feed([bar('QQQ', T0 + MIN, 10)]);
  assert.equal(first.broker.stats().fills, 1, 'the broker filled it');
  assert.equal(first.storage.orders.get(ID)?.state, 'submitted', 'the journal never heard');
  assert.equal(first.orders.position('QQQ'), 0);
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(second.report.fillsApplied, 1);
  assert.deepEqual(second.report.discrepancies, []);
  assert.equal(second.orders.position('QQQ'), 100);
  const again = await second.orders.reconcile();
  assert.equal(again.fillsApplied, 0);
  const record = second.storage.orders.get(ID)!;
  assert.equal(record.state, 'filled');
  assert.equal(record.fills.length, 1);
  await second.storage.close();

  const third = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(third.orders.position('QQQ'), 100, 'positions rebuilt from the journal count the fill once');
  assert.equal(third.report.fillsApplied, 0);
});

test('a bar delivered again after a restart yields the same client order id, which is not sent twice', async (t) => {
  const first = await rig(t, { strategy: script() });
  await first.feed([bar('QQQ', T0, 10)]);
  assert.equal(first.broker.stats().accepted, 1);
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  await second.feed([bar('QQQ', T0, 10)]);
  assert.equal(second.loop.status().counters.orders.duplicates, 1);
  assert.equal(second.broker.stats().submitCalls, 0);
  assert.equal(second.broker.stats().accepted, 1);
});

test('an order the broker stopped working without a fill is closed by reconcile, and a position mismatch is reported', async (t) => {
  const first = await rig(t, { strategy: script() });
  await first.feed([bar('QQQ', T0, 10), bar('QQQ', T0 + MIN, 10)]);
  await first.storage.orders.put({ ...first.storage.orders.get(ID)!, clientOrderId: 'bk-s-QQQ-ghost-0', state: 'submitted', fills: [], filledQty: 0, avgFillPrice: 0 });
  await first.storage.checkpoints.delete('paper-broker');
  await first.storage.close();

  const second = await rig(t, { dir: first.dir, strategy: script() });
  assert.equal(second.report.closed, 1);
  assert.match(second.storage.orders.get('bk-s-QQQ-ghost-0')?.rejectReason ?? '', /no longer has the order/);
  assert.deepEqual(second.report.discrepancies, ['QQQ: journal fills give 100 shares, broker reports 0']);
  assert.ok(second.log.has('warn', /reconcile: QQQ: journal fills give 100 shares/));
});
