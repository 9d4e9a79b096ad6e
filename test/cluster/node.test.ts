/**
 * Cluster nodes against a real nats-server with JetStream: ownership without overlap, every bar in
 * every cache, hand-over when a node leaves or goes silent, the order fence, a NATS restart, a join.
 * Each node here has its own LMDB environment in a temp folder, as each process would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats, type NatsServer } from '../helpers/nats.ts';
import { until } from '../helpers/serve.ts';
import { ClusterNode } from '../../src/cluster/node.ts';
import { ClusterUnavailableError } from '../../src/cluster/connection.ts';
import { FencedError } from '../../src/cluster/order-fence.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import type { Bar } from '../../src/market/bar.ts';

const SYMBOLS = ['AAPL', 'MSFT', 'QQQ', 'SPY', 'IWM', 'BRK.B', 'NVDA', 'TSLA', 'AMD', 'META', 'GOOG', 'AMZN'];
const T0 = Date.UTC(2026, 2, 2, 14, 30);
const LEASE_MS = 1500;

function bar(symbol: string, i: number, close = 100 + i): Bar {
  return {
    symbol,
    barSize: '1Min',
    start: T0 + i * 60_000,
    open: close,
    high: close + 1,
    low: close - 1,
    close,
    volume: 1000 + i,
    vwap: close,
    trades: 10,
    source: 'massive',
    receivedAt: T0,
  };
}

interface Harness {
  nats: NatsServer;
  nodes: ClusterNode[];
  stores: Storage[];
  add(id: string): Promise<ClusterNode>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function harness(count: number): Promise<Harness> {
  const nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-cluster.'));
  const nodes: ClusterNode[] = [];
  const stores: Storage[] = [];
  const add = async (id: string) => {
    const store = openStorage({ path: join(root, id) });
    stores.push(store);
    const node = new ClusterNode({
      nodeId: id,
      url: `http://127.0.0.1:0/${id}`,
      natsUrl: nats.url,
      symbols: SYMBOLS,
      store: store.bars,
      now: () => T0,
      leaseTtlMs: LEASE_MS,
      tickMs: 200,
    });
    await node.start();
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < count; i++) await add(`node-${i + 1}`);
  return {
    nats,
    nodes,
    stores,
    add,
    async [Symbol.asyncDispose]() {
      for (const n of nodes) await n.stop().catch(() => undefined);
      for (const s of stores) await s.close();
      await nats[Symbol.asyncDispose]();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function settledSplit(nodes: ClusterNode[]): Promise<Map<string, string>> {
  return until(
    async () => {
      await Promise.all(nodes.map((n) => n.tick()));
      const owner = new Map<string, string>();
      for (const n of nodes)
        for (const s of n.owned()) {
          if (owner.has(s)) return false;
          owner.set(s, n.nodeId);
        }
      return owner.size === SYMBOLS.length ? owner : false;
    },
    'every symbol owned by exactly one node',
    15_000,
  );
}

test('a cluster node refuses to start when NATS is unreachable, and when JetStream is off', async () => {
  const node = new ClusterNode({
    nodeId: 'lonely',
    url: 'http://127.0.0.1:1',
    natsUrl: 'nats://127.0.0.1:1',
    symbols: SYMBOLS,
    store: { put: async () => ({ written: 0, shadowed: 0, divergent: 0 }), putMany: async () => ({ written: 0, shadowed: 0, divergent: 0 }) },
    now: () => T0,
    leaseTtlMs: LEASE_MS,
  });
  await assert.rejects(node.start(), (err: unknown) => err instanceof ClusterUnavailableError && /cannot reach NATS at nats:\/\/127\.0\.0\.1:1/.test(err.message));
  await using plain = await startNats({ jetstream: false });
  const node2 = new ClusterNode({ ...(node as unknown as { opts: object }).opts, natsUrl: plain.url } as ConstructorParameters<typeof ClusterNode>[0]);
  await assert.rejects(node2.start(), (err: unknown) => err instanceof ClusterUnavailableError && /JetStream is not available/.test(err.message));
});

test('three nodes split the symbols with no overlap, and every cache holds every bar', async () => {
  await using h = await harness(3);
  const owner = await settledSplit(h.nodes);
  for (const n of h.nodes) assert.ok(n.owned().length > 0, `${n.nodeId} owns something`);
  const status = await h.nodes[0].status();
  assert.equal(status.node_id, 'node-1');
  assert.deepEqual(
    status.members.map((m) => m.node_id),
    ['node-1', 'node-2', 'node-3'],
  );
  assert.deepEqual(Object.fromEntries(Object.entries(status.leases).sort()), Object.fromEntries([...owner].sort()));

  // Every node "collects" every symbol; only the owner's bars are published.
  const bars = SYMBOLS.flatMap((s) => [bar(s, 0), bar(s, 1), bar(s, 2)]);
  await Promise.all(h.nodes.map((n) => n.publishBars(bars)));
  const published = h.nodes.reduce((a, n) => a + n.publisher.published, 0);
  assert.equal(published, bars.length, 'each bar published once, by its owner');
  // Published again (a retry after a lost ack): JetStream stores it once.
  await h.nodes[0].publisher.publish(bars.filter((b) => h.nodes[0].owns(b.symbol)));
  assert.ok(h.nodes[0].publisher.duplicates > 0);
  for (const st of h.stores) {
    await until(async () => SYMBOLS.every((s) => st.bars.range(s, '1Min', T0, T0 + 3 * 60_000).length === 3), 'replica complete', 15_000);
  }
  assert.equal(h.stores[2].bars.get('BRK.B', '1Min', T0 + 60_000)?.close, 101);
  assert.equal((await h.nodes[1].metrics()).stream_lag, 0);
});

test('a node that leaves hands its symbols over at once; one that goes silent loses them after the lease TTL', async () => {
  await using h = await harness(3);
  const before = await settledSplit(h.nodes);
  const [a, b, c] = h.nodes;
  const cOwned = c.owned();
  await c.stop();
  const afterLeave = await settledSplit([a, b]);
  for (const s of cOwned) assert.notEqual(afterLeave.get(s), 'node-3');
  for (const [s, o] of before) if (o !== 'node-3') assert.equal(afterLeave.get(s), o, `${s} did not move`);

  // b goes silent (frozen): no beat, no renewal, nothing given up.
  const bOwned = b.owned();
  b.haltTicks();
  const afterFreeze = await settledSplit([a]);
  for (const s of bOwned) assert.equal(afterFreeze.get(s), 'node-1');
});

test('a frozen owner that lost its lease cannot append an order: the append is fenced and counted', async () => {
  await using h = await harness(2);
  await settledSplit(h.nodes);
  const [a, b] = h.nodes;
  const symbol = a.owned()[0];
  await a.fence.append(symbol, { type: 'placed', client_order_id: 'cid-1' });
  a.haltTicks();
  await until(
    async () => {
      await b.tick();
      return b.owns(symbol);
    },
    `node-2 takes ${symbol}`,
    15_000,
  );
  // node-1 still believes it owns the symbol (it has not ticked), but the fence refuses it.
  assert.ok(a.owns(symbol));
  await assert.rejects(a.fence.append(symbol, { type: 'placed', client_order_id: 'cid-2' }), FencedError);
  assert.equal((await a.metrics()).fenced_appends, 1);
  // The new owner read the history on takeover and appends on top of it.
  const history = await b.fence.history(symbol);
  assert.deepEqual(
    history.map((e) => e.event.client_order_id ?? e.event.type),
    ['lease', 'cid-1', 'lease'],
  );
  await b.fence.append(symbol, { type: 'placed', client_order_id: 'cid-3' });
  // When node-1 wakes, it learns it lost the symbol.
  a.resumeTicks();
  await until(
    async () => {
      await a.tick();
      return !a.owns(symbol);
    },
    'node-1 gives the symbol up',
    10_000,
  );
});

test('NATS restarting mid-session: the nodes reconnect and nothing published is lost', async () => {
  await using h = await harness(2);
  await settledSplit(h.nodes);
  await Promise.all(h.nodes.map((n) => n.publishBars(SYMBOLS.map((s) => bar(s, 0)))));
  await h.nats.stop();
  await h.nats.start();
  await settledSplit(h.nodes);
  await until(
    async () => {
      try {
        await Promise.all(h.nodes.map((n) => n.publishBars(SYMBOLS.map((s) => bar(s, 1)))));
        return true;
      } catch {
        return false;
      }
    },
    'publishing works again',
    15_000,
  );
  for (const st of h.stores) {
    await until(async () => SYMBOLS.every((s) => st.bars.range(s, '1Min', T0, T0 + 2 * 60_000).length === 2), 'both bars everywhere', 15_000);
  }
});

test('a node joining mid-session takes its share, and no symbol is ever owned twice', async () => {
  await using h = await harness(2);
  await settledSplit(h.nodes);
  const joined = await h.add('node-3');
  const split = await settledSplit(h.nodes);
  assert.ok(joined.owned().length > 0, 'the new node owns some symbols');
  assert.equal([...split.values()].filter((o) => o === 'node-3').length, joined.owned().length);
});
