/**
 * The replica path and the leases under load, against a real nats-server with JetStream and real
 * LMDB environments in temp folders:
 * - a replica makes bars visible at the commit but acknowledges the stream only for bars on disk,
 *   so a replica that dies before a flush gets exactly the unflushed bars again;
 * - a node busy with an ingest burst keeps renewing its leases: none moves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { CommittedStore } from '../helpers/committed-store.ts';
import { startNats } from '../helpers/nats.ts';
import { until } from '../helpers/serve.ts';
import { ClusterNode } from '../../src/cluster/node.ts';
import type { ReplicaStore } from '../../src/cluster/bar-replication.ts';
import { BARS_STREAM } from '../../src/cluster/subjects.ts';
import { connectCluster } from '../../src/cluster/connection.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { WriteResult } from '../../src/storage/types.ts';

const T0 = Date.UTC(2026, 2, 2, 14, 30);
/** The busy nodes' lease TTL: they renew every third of it. */
const LEASE_MS = 2000;
/** A guard on the burst, in rounds of one bar per symbol: it ends after 6 lease rounds, or when a lease moves. */
const MAX_ROUNDS = 400;

function bar(symbol: string, i: number): Bar {
  const c = 100 + (i % 50);
  return { symbol, barSize: '1Min', start: T0 + i * 60_000, open: c, high: c + 1, low: c - 1, close: c, volume: 1000, vwap: c, trades: 5, source: 'massive', receivedAt: T0 };
}

/**
 * The real bar store, whose flushes the test lets through or holds back: a held flush is a disk
 * that has not finished its fsync yet (the commit is done: readers see the bars).
 */
class GatedStore extends CommittedStore {
  private gate: { promise: Promise<void>; open(): void } | null = null;
  constructor(readonly storage: Storage) {
    super();
  }
  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => {
      open = r;
    });
    this.gate = { promise, open };
  }
  release(): void {
    this.gate?.open();
    this.gate = null;
  }
  async putManyCommitted(bars: readonly Bar[]): Promise<{ result: WriteResult; flushed: Promise<void> }> {
    const r = await this.storage.bars.putManyCommitted(bars);
    const gate = this.gate?.promise;
    return { result: r.result, flushed: gate ? Promise.all([r.flushed, gate]).then(() => undefined) : r.flushed };
  }
}

test('a replica acknowledges only bars on disk: killed before a flush, it gets exactly the unflushed bars again', async () => {
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-replica.'));
  const storages: Storage[] = [];
  const open = (name: string) => {
    const st = openStorage({ path: join(root, name) });
    storages.push(st);
    return st;
  };
  const nodes: ClusterNode[] = [];
  const start = async (store: ReplicaStore) => {
    const node = new ClusterNode({ nodeId: 'replica-1', url: 'http://127.0.0.1:0/r1', natsUrl: nats.url, symbols: ['AAPL'], store, now: () => T0, leaseTtlMs: 3000 });
    nodes.push(node);
    await node.start();
    return node;
  };
  const admin = await connect({ servers: nats.url });
  let gated: GatedStore | undefined;
  try {
    const jsm = await jetstreamManager(admin);
    const durable = `replica_${Buffer.from('replica-1').toString('hex')}`;
    gated = new GatedStore(open('first'));
    const node = await start(gated);
    assert.ok(node.owns('AAPL'));

    // Flushed: visible, then acknowledged.
    await node.publishBars([0, 1, 2].map((i) => bar('AAPL', i)));
    await until(async () => node.replicaStats().acknowledged === 3, 'the first three bars acknowledged', 10_000);
    await until(async () => (await jsm.consumers.info(BARS_STREAM, durable)).ack_floor.stream_seq === 3, 'the ack floor at the third bar', 10_000);

    // Committed but not flushed: in the cache (every reader sees them), not acknowledged.
    gated.hold();
    await node.publishBars([3, 4].map((i) => bar('AAPL', i)));
    await until(async () => node.replicaStats().committed === 5, 'the next two bars committed', 10_000);
    assert.equal(gated.storage.bars.range('AAPL', '1Min', T0, T0 + 10 * 60_000).length, 5, 'in the cache');
    assert.equal(node.replicaStats().acknowledged, 3);
    const info = await jsm.consumers.info(BARS_STREAM, durable);
    assert.equal(info.ack_floor.stream_seq, 3, 'the acknowledgement covers only what is on disk');

    // Killed before the flush. A fresh cache under the same node id (same durable consumer) gets the
    // two unflushed bars again, and only those.
    await node.crash();
    const fresh = open('after-crash');
    const again = await start(fresh.bars);
    await until(async () => fresh.bars.range('AAPL', '1Min', T0, T0 + 10 * 60_000).length === 2, 'the unflushed bars delivered again', 15_000);
    assert.deepEqual(
      fresh.bars.range('AAPL', '1Min', T0, T0 + 10 * 60_000).map((b) => b.start),
      [T0 + 3 * 60_000, T0 + 4 * 60_000],
    );
    await until(async () => again.replicaStats().acknowledged === 2, 'acknowledged once flushed', 10_000);
  } finally {
    gated?.release();
    for (const n of nodes) await n.stop().catch(() => undefined);
    await admin.close();
    for (const s of storages) await s.close();
    rmSync(root, { recursive: true, force: true });
  }
});

/** The gated store with the real store's on-thread write beside it, counting which path each batch took. */
class TwoPathStore extends GatedStore {
  syncBatches = 0;
  asyncBatches = 0;
  putManySync(bars: readonly Bar[]): WriteResult {
    this.syncBatches++;
    return this.storage.bars.putManySync(bars);
  }
  override putManyCommitted(bars: readonly Bar[]) {
    this.asyncBatches++;
    return super.putManyCommitted(bars);
  }
}

test('a replica writes a lone bar on its own thread and a backlog through the writer thread, and no acknowledgement overtakes a batch not yet on disk', async () => {
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-replica.'));
  const st = openStorage({ path: join(root, 'cache') });
  const store = new TwoPathStore(st);
  const node = new ClusterNode({ nodeId: 'replica-3', url: 'http://127.0.0.1:0/r3', natsUrl: nats.url, symbols: ['IBM'], store, now: () => T0, leaseTtlMs: 3000 });
  const admin = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(admin);
  const durable = `replica_${Buffer.from('replica-3').toString('hex')}`;
  const inCache = () => st.bars.range('IBM', '1Min', T0, T0 + 1000 * 60_000).length;
  try {
    // A backlog of 300 bars waiting in the stream when the node starts, its flushes held back.
    const setup = await connectCluster({ natsUrl: nats.url, name: 'setup', memberTtlMs: 3000, leaseTtlMs: 3000, barsMaxAgeMs: 3600_000 });
    await setup.close();
    const js = jetstream(admin);
    await Promise.all(
      Array.from({ length: 300 }, (_, i) => {
        const { receivedAt: _r, ...b } = bar('IBM', i);
        return js.publish('bars.1Min.IBM', JSON.stringify(b));
      }),
    );
    store.hold();
    await node.start();
    await until(async () => inCache() === 300, 'the backlog committed: in the cache', 10_000);
    assert.ok(store.asyncBatches > 0, 'a batch of the backlog went through the writer thread');
    const held = node.replicaStats().acknowledged;
    assert.ok(held < 300, `not all acknowledged while a flush is held (${held})`);

    // One more bar while that flush is held: readable at once, acknowledged only after the held batch.
    await node.publishBars([bar('IBM', 300)]);
    await until(async () => inCache() === 301, 'the lone bar in the cache', 10_000);
    assert.equal(node.replicaStats().acknowledged, held, 'its acknowledgement waits for the batch before it');
    assert.ok((await jsm.consumers.info(BARS_STREAM, durable)).ack_floor.stream_seq <= held);

    store.release();
    await until(async () => node.replicaStats().acknowledged === 301, 'everything acknowledged once flushed', 10_000);

    // Nothing waits for a flush now: the next lone bar is written on the node's thread.
    const before = store.syncBatches;
    await node.publishBars([bar('IBM', 301)]);
    await until(async () => node.replicaStats().acknowledged === 302, 'the next lone bar acknowledged', 10_000);
    assert.equal(store.syncBatches, before + 1, 'written by putManySync');
    assert.equal((await jsm.consumers.info(BARS_STREAM, durable)).ack_floor.stream_seq, 302);
  } finally {
    store.release();
    await node.stop().catch(() => undefined);
    await admin.close();
    await st.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test("the replica's on-thread write keeps the cache's cross-source rule", async () => {
  const root = mkdtempSync(join(tmpdir(), 'barkeep-replica.'));
  const st = openStorage({ path: join(root, 'cache') });
  try {
    const massive = bar('AMD', 0);
    assert.deepEqual(st.bars.putManySync([massive, bar('AMD', 1)]), { written: 2, shadowed: 0, divergent: 0 });
    // A lower-precedence source does not replace massive's bar; massive's correction does.
    const alpaca = { ...massive, source: 'alpaca' as const, close: massive.close + 0.01 };
    assert.equal(st.bars.putManySync([alpaca]).shadowed, 1);
    assert.equal(st.bars.get('AMD', '1Min', T0)?.source, 'massive');
    assert.equal(st.bars.putManySync([{ ...massive, close: massive.close + 0.5 }]).written, 1);
    assert.equal(st.bars.get('AMD', '1Min', T0)?.close, massive.close + 0.5);
    assert.equal(st.bars.latest('AMD', '1Min')?.start, T0 + 60_000, 'the series head moved');
    assert.throws(() => st.bars.putManySync([{ ...massive, high: 1, low: 500 }]), /high 1 is below low 500/);
  } finally {
    await st.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a malformed or invalid bar on the stream is logged and skipped; the bars around it are written and acknowledged', async () => {
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-replica.'));
  const st = openStorage({ path: join(root, 'cache') });
  const errors: string[] = [];
  const node = new ClusterNode({
    nodeId: 'replica-2',
    url: 'http://127.0.0.1:0/r2',
    natsUrl: nats.url,
    symbols: ['MSFT'],
    store: st.bars,
    now: () => T0,
    leaseTtlMs: 3000,
    onError: (err) => errors.push((err as Error).message),
  });
  const admin = await connect({ servers: nats.url });
  try {
    await node.start();
    const js = jetstream(admin);
    // One batch: a good bar, a bar whose high is below its low, a message that is not JSON, a good bar.
    const wire = (i: number, patch: object = {}) => {
      const { receivedAt: _, ...b } = bar('MSFT', i);
      return JSON.stringify({ ...b, ...patch });
    };
    await Promise.all([
      js.publish('bars.1Min.MSFT', wire(0)),
      js.publish('bars.1Min.MSFT', wire(1, { high: 1, low: 500 })),
      js.publish('bars.1Min.MSFT', '{not json'),
      js.publish('bars.1Min.MSFT', wire(2)),
    ]);
    await until(async () => node.replicaStats().acknowledged === 2, 'the two good bars acknowledged', 10_000);
    assert.deepEqual(
      st.bars.range('MSFT', '1Min', T0, T0 + 10 * 60_000).map((b) => b.start),
      [T0, T0 + 2 * 60_000],
    );
    assert.equal(errors.length, 2, errors.join('; '));
    // Acknowledgements go out without waiting for the server's word, so its count catches up a moment later.
    await until(async () => (await node.metrics()).stream_lag === 0, 'nothing left unacknowledged (the two bad messages too)', 10_000);
  } finally {
    await node.stop().catch(() => undefined);
    await admin.close();
    await st.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('nodes busy ingesting a burst of bars keep their leases: no lease moves while no node joins or leaves', async () => {
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-replica.'));
  const symbols = Array.from({ length: 1200 }, (_, i) => `S${i}`);
  const storages: Storage[] = [];
  const nodes: ClusterNode[] = [];
  try {
    for (const id of ['busy-1', 'busy-2']) {
      const st = openStorage({ path: join(root, id) });
      storages.push(st);
      const node = new ClusterNode({ nodeId: id, url: `http://127.0.0.1:0/${id}`, natsUrl: nats.url, symbols, store: st.bars, now: () => T0, leaseTtlMs: LEASE_MS });
      await node.start();
      nodes.push(node);
    }
    await until(
      async () => {
        const owned = nodes.flatMap((n) => n.owned());
        return owned.length === symbols.length && new Set(owned).size === symbols.length && nodes.every((n) => n.owned().length > 0);
      },
      'the symbols split between the two nodes',
      20_000,
    );
    const owners = new Map(nodes.flatMap((n) => n.owned().map((s) => [s, n.nodeId] as const)));
    const changes = nodes.map((n) => n.leaseChangesTotal());
    const ticks = nodes.map((n) => n.tickStats(true).ticks);

    // The burst: every symbol's next bars, round after round, published by its owner and written
    // into both caches, until each node has been through several lease rounds (a TTL and more)
    // while busy.
    const renewals = () => nodes.map((n, i) => n.tickStats().ticks - ticks[i]);
    let round = 0;
    const moved = () => nodes.some((n, i) => n.leaseChangesTotal() !== changes[i]);
    while (round < MAX_ROUNDS && renewals().some((r) => r < 6) && !moved()) {
      await Promise.all(nodes.map((n) => n.publishBars(n.owned().map((s) => bar(s, round)))));
      round++;
    }
    const longest = Math.max(...nodes.map((n) => n.tickStats().longest_ms)).toFixed(0);
    assert.deepEqual(
      nodes.map((n) => n.leaseChangesTotal()),
      changes,
      `no lease changed hands during ${round} rounds of ${symbols.length} bars (longest lease round ${longest} ms, TTL ${LEASE_MS} ms)`,
    );
    assert.ok(
      renewals().every((r) => r >= 6),
      `each node renewed its leases 6 times during the burst: ${renewals().join(', ')} (longest round ${longest} ms)`,
    );
    for (const n of nodes) for (const s of n.owned()) assert.equal(owners.get(s), n.nodeId);
    const last = T0 + (round - 1) * 60_000;
    await until(async () => storages.every((st) => symbols.every((s) => st.bars.get(s, '1Min', last) !== undefined)), 'the burst in both caches', 30_000);
  } finally {
    for (const n of nodes) await n.stop().catch(() => undefined);
    for (const s of storages) await s.close();
    rmSync(root, { recursive: true, force: true });
  }
});
