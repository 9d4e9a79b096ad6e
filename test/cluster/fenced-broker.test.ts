/**
 * The order fence on the trader's path, against a real nats-server and the real paper broker: an
 * order goes to the broker only after its append to orders.<symbol> succeeded, and a trader whose
 * node lost the symbol's lease (or was never handed it) cannot send one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats } from '../helpers/nats.ts';
import { until } from '../helpers/serve.ts';
import { ClusterNode } from '../../src/cluster/node.ts';
import { openOrderFence } from '../../src/cluster/trader-fence.ts';
import { FencedBroker } from '../../src/actors/trader/fenced-broker.ts';
import { BrokerError } from '../../src/actors/trader/broker.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage } from '../../src/storage/storage.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { order as pendingOrder } from '../trader/support.ts';

const T0 = Date.UTC(2026, 2, 2, 14, 30);

/** A pending 10-share market buy of `symbol` at T0. */
function order(id: string, symbol: string): OrderRecord {
  return pendingOrder(id, { symbol, qty: 10, barStart: T0, createdAt: T0, updatedAt: T0 });
}

test('a trader whose node lost the lease cannot send: the order is refused before the broker sees it', async () => {
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-fence-'));
  const stA = openStorage({ path: join(root, 'a') });
  const stB = openStorage({ path: join(root, 'b') });
  const common = { url: 'http://x', natsUrl: nats.url, symbols: ['QQQ'], now: () => T0, leaseTtlMs: 1500, tickMs: 200 };
  const a = new ClusterNode({ ...common, nodeId: 'a', store: stA.bars });
  await a.start();
  const b = new ClusterNode({ ...common, nodeId: 'b', store: stB.bars });
  await b.start();
  const owner = a.owns('QQQ') ? a : b;
  const other = owner === a ? b : a;
  const traderFence = await openOrderFence({ natsUrl: nats.url, nodeId: owner.nodeId, leaseTtlMs: 1500 });
  const paper = new PaperBroker({ checkpoints: (owner === a ? stA : stB).checkpoints, clock: new ManualClock(T0) });
  const broker = new FencedBroker(paper, traderFence.fence);
  try {
    // Not yet handed the symbol: refused, nothing at the broker.
    await assert.rejects(broker.submit(order('o0', 'QQQ')), (e: unknown) => e instanceof BrokerError && e.code === 'BROKER_REJECTED');
    assert.equal((await paper.openOrders()).length, 0);

    await traderFence.hold(['QQQ']);
    await broker.submit(order('o1', 'QQQ'));
    assert.deepEqual(
      (await paper.openOrders()).map((o) => o.clientOrderId),
      ['o1'],
    );

    // The owner freezes; the other node takes QQQ over after the lease TTL.
    owner.haltTicks();
    await until(
      async () => {
        await other.tick();
        return other.owns('QQQ');
      },
      'the other node owns QQQ',
      15_000,
    );
    await assert.rejects(broker.submit(order('o2', 'QQQ')), (e: unknown) => e instanceof BrokerError && e.code === 'BROKER_REJECTED' && /fenced/.test(e.message));
    assert.deepEqual(
      (await paper.openOrders()).map((o) => o.clientOrderId),
      ['o1'],
      'the fenced order never reached the broker',
    );
    assert.equal(traderFence.fence.fenced, 2);
    const history = await other.fence.history('QQQ');
    assert.deepEqual(
      history.map((h) => h.event.client_order_id ?? `${h.event.type}:${h.event.node_id}`),
      [`lease:${owner.nodeId}`, 'o1', `lease:${other.nodeId}`],
    );
  } finally {
    await traderFence.close();
    await a.stop();
    await b.stop();
    await stA.close();
    await stB.close();
    rmSync(root, { recursive: true, force: true });
  }
});
