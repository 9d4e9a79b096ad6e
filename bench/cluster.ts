/**
 * Cluster mode on NATS JetStream (a real nats-server, three nodes in this process, each with its own
 * LMDB environment as each process would have):
 * - bar published by its owner -> visible in every node's cache (the replica's transaction
 *   committed), beside the floors measured in the same run: a raw JetStream publish -> consume round
 *   trip on the same server (the floor, goal within 2x), the same fanned out to three
 *   consumers, and one bar committed into a cache (and committed and fsynced); the path is split
 *   into its two legs (NATS delivery to the replica; the commit), and the same bar on disk in every
 *   cache (what the replicas acknowledge to the stream) is shown beside it;
 * - ingest: bars per second the three-node cluster writes into every cache, against one node alone,
 *   and the lease changes meanwhile (goal 0: a busy node keeps its leases);
 * - failover: a node dropped without a word (as a SIGKILL looks to the others) -> every one of its
 *   symbols owned by a live node, over several kills.
 * BARKEEP_BENCH_CLUSTER_SYMBOLS overrides the symbol count (5,000; --quick 300).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { CommittedStore } from '../test/helpers/committed-store.ts';
import { startNats } from '../test/helpers/nats.ts';
import { ClusterNode } from '../src/cluster/node.ts';
import { assign } from '../src/cluster/rendezvous.ts';
import { openStorage, type Storage } from '../src/storage/storage.ts';
import { createBarView } from '../src/storage/bar-codec.ts';
import type { Bar } from '../src/market/bar.ts';
import type { WriteResult } from '../src/storage/types.ts';
import { rssMiB, summarize, table } from './stats.ts';

const T0 = Date.UTC(2026, 2, 2, 14, 30);

function bar(symbol: string, i: number): Bar {
  const c = 100 + (i % 50);
  return { symbol, barSize: '1Min', start: T0 + i * 60_000, open: c, high: c + 1, low: c - 1, close: c, volume: 1000, vwap: c, trades: 5, source: 'massive', receivedAt: T0 };
}

/**
 * A bar store that notes when each bar key became visible in it (its transaction committed) and
 * when it was on disk (flushed: what the replica waits for before it acknowledges the stream).
 */
class TimedStore extends CommittedStore {
  seen = new Map<string, number>();
  durable = new Map<string, number>();
  /** When the replica handed each bar to the store (delivered by NATS, not yet written). */
  delivered = new Map<string, number>();
  waiters = new Map<string, () => void>();
  constructor(readonly inner: Storage) {
    super();
  }
  async putManyCommitted(bars: readonly Bar[]): Promise<{ result: WriteResult; flushed: Promise<void> }> {
    const at = performance.now();
    for (const b of bars) this.delivered.set(`${b.symbol}|${b.start}`, at);
    const r = await this.inner.bars.putManyCommitted(bars);
    const now = performance.now();
    for (const b of bars) {
      const k = `${b.symbol}|${b.start}`;
      this.seen.set(k, now);
      this.waiters.get(k)?.();
    }
    const flushed = r.flushed.then(() => {
      const t = performance.now();
      for (const b of bars) this.durable.set(`${b.symbol}|${b.start}`, t);
    });
    return { result: r.result, flushed };
  }
  when(symbol: string, start: number): Promise<number> {
    const k = `${symbol}|${start}`;
    const t = this.seen.get(k);
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => this.waiters.set(k, () => resolve(this.seen.get(k)!)));
  }
  /** When the bar was on disk (polls: only the latency loop asks, once per sample). */
  async whenDurable(symbol: string, start: number): Promise<number> {
    const k = `${symbol}|${start}`;
    for (;;) {
      const t = this.durable.get(k);
      if (t !== undefined) return t;
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** Raw JetStream: publish, then consumed by `fanout` durable consumers (the last one's arrival). */
async function floor(url: string, samples: number, fanout: number) {
  // The client as the nodes configure it (connection.ts).
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const stream = `BENCH_FLOOR_${fanout}`;
  await jsm.streams.add({ name: stream, subjects: [`floor${fanout}.>`] });
  const js = jetstream(nc);
  const waiting = new Map<number, { left: number; done: (t: number) => void }>();
  const stops: Array<() => void> = [];
  for (let c = 0; c < fanout; c++) {
    await jsm.consumers.add(stream, { durable_name: `floor${c}`, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All });
    const msgs = await (await js.consumers.get(stream, `floor${c}`)).consume();
    stops.push(() => msgs.stop());
    void (async () => {
      for await (const m of msgs) {
        const w = waiting.get(m.json<{ i: number }>().i);
        if (w && --w.left === 0) w.done(performance.now());
        m.ack();
      }
    })();
  }
  const lat: number[] = [];
  for (let i = 0; i < samples; i++) {
    const got = new Promise<number>((done) => waiting.set(i, { left: fanout, done }));
    const t = performance.now();
    await js.publish(`floor${fanout}.x`, JSON.stringify({ i, pad: 'x'.repeat(150) }));
    lat.push(((await got) - t) * 1000);
    waiting.delete(i);
  }
  for (const stop of stops) stop();
  await nc.close();
  return summarize(lat);
}

const view = createBarView();

/**
 * Spins (one check per event-loop turn, as a reader polling its cache would see it) until each
 * store can read the bar; returns when each first could.
 */
async function readable(stores: readonly Storage[], symbol: string, start: number): Promise<number[]> {
  const seen: number[] = stores.map(() => Number.NaN);
  for (let left = stores.length; ; ) {
    for (let i = 0; i < stores.length; i++) {
      if (Number.isNaN(seen[i]) && stores[i].bars.readInto(symbol, '1Min', start, view)) {
        seen[i] = performance.now();
        left--;
      }
    }
    if (left === 0) return seen;
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * One bar written into a cache, one at a time: until a reader sees it (the commit is visible),
 * until the writer's commit resolves (lmdb-js resolves it once the commit's fsync is done, in
 * overlappingSync mode: readers see it before), and until it is on disk.
 */
async function writeFloor(path: string, samples: number) {
  const st = openStorage({ path });
  const visible: number[] = [];
  const commit: number[] = [];
  const durable: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const b = bar('W', 50_000 + i);
      const t = performance.now();
      const writing = st.bars.putManyCommitted([b]);
      const [seen] = await readable([st], b.symbol, b.start);
      visible.push((seen - t) * 1000);
      const { flushed } = await writing;
      commit.push((performance.now() - t) * 1000);
      await flushed;
      durable.push((performance.now() - t) * 1000);
    }
  } finally {
    await st.close();
  }
  return { visible: summarize(visible), commit: summarize(commit), durable: summarize(durable) };
}

export async function run(opts: { quick?: boolean }) {
  const quick = !!opts.quick;
  const nSymbols = Number(process.env.BARKEEP_BENCH_CLUSTER_SYMBOLS) || (quick ? 300 : 5000);
  const samples = quick ? 200 : 2000;
  const kills = quick ? 2 : 10;
  // Every owned symbol's lease is renewed each tick (a third of the TTL): 5,000 symbols on one
  // loaded machine need a little more than the 2 s that 300 symbols get by with.
  const leaseMs = quick ? 2000 : 3000;
  const progress = (what: string) => process.stderr.write(`cluster bench: ${what}\n`);
  const symbols = Array.from({ length: nSymbols }, (_, i) => `S${i}`);
  await using nats = await startNats();
  const root = mkdtempSync(join(tmpdir(), 'barkeep-bench-cluster-'));
  const storages: Storage[] = [];
  const make = async (id: string, syms: string[] = symbols) => {
    const st = openStorage({ path: join(root, id) });
    storages.push(st);
    const store = new TimedStore(st);
    const node = new ClusterNode({ nodeId: id, url: `http://bench/${id}`, natsUrl: nats.url, symbols: syms, store, now: () => T0, leaseTtlMs: leaseMs });
    await node.start();
    return { node, store };
  };
  // Waits for the nodes' own ticks (not forced ones) to own every symbol exactly once.
  // `balanced`: also every symbol at its rendezvous winner (a join's hand-overs done), not just
  // owned once (what a failover needs).
  const settle = async (nodes: ClusterNode[], syms = symbols, balanced = false) => {
    const winners = assign(
      syms,
      nodes.map((n) => n.nodeId),
    );
    const since = performance.now();
    let said = since;
    for (;;) {
      if (performance.now() - said > 5000) {
        said = performance.now();
        progress(`  waiting ${((said - since) / 1000).toFixed(0)} s for ownership: ${nodes.map((n) => n.owned().length).join(' + ')} of ${syms.length}`);
      }
      const owned = new Set<string>();
      let overlap = false;
      for (const n of nodes) for (const s of n.owned()) owned.has(s) ? (overlap = true) : owned.add(s);
      if (!overlap && owned.size === syms.length && (!balanced || nodes.every((n) => n.owned().every((s) => winners.get(s) === n.nodeId)))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    progress('floors');
    const floorLat = await floor(nats.url, samples, 1);
    const fanoutLat = await floor(nats.url, samples, 3);
    const writeLat = await writeFloor(join(root, 'write-floor'), samples);

    progress(`three nodes taking ${nSymbols} symbols`);
    const nodes = [await make('a'), await make('b'), await make('c')];
    await settle(
      nodes.map((n) => n.node),
      symbols,
      true,
    );
    // Latency: one bar at a time, from its owner's publish to durable in the last of the three caches.
    const changesBefore = nodes.reduce((a, n) => a + n.node.leaseChangesTotal(), 0);
    progress('latency');
    const lat: number[] = [];
    const commitLat: number[] = [];
    const durableLat: number[] = [];
    const deliver: number[] = [];
    const write: number[] = [];
    const rss0 = rssMiB();
    for (let i = 0; i < samples; i++) {
      const s = symbols[(i * 7919) % nSymbols];
      // A lease renewal late under load hands a symbol over: wait for its next owner.
      let owner = nodes.find((n) => n.node.owns(s));
      while (!owner) {
        await new Promise((r) => setTimeout(r, 10));
        owner = nodes.find((n) => n.node.owns(s));
      }
      const b = bar(s, 1000 + i);
      const t = performance.now();
      const publishing = owner.node.publisher.publish([b]);
      // Readable in every cache: what a reader of any node (its arbiter, /bars) sees.
      const seen = await readable(
        nodes.map((n) => n.store.inner),
        s,
        b.start,
      );
      lat.push((Math.max(...seen) - t) * 1000);
      await publishing;
      // The replicas' commits resolved, then on disk everywhere (acknowledged), before the next sample.
      const committed = await Promise.all(nodes.map((n) => n.store.when(s, b.start)));
      commitLat.push((Math.max(...committed) - t) * 1000);
      const onDisk = await Promise.all(nodes.map((n) => n.store.whenDurable(s, b.start)));
      durableLat.push((Math.max(...onDisk) - t) * 1000);
      const k = `${s}|${b.start}`;
      nodes.forEach((n, j) => {
        deliver.push((n.store.delivered.get(k)! - t) * 1000);
        write.push((seen[j] - n.store.delivered.get(k)!) * 1000);
      });
    }
    const clusterLat = summarize(lat);
    const clusterCommit = summarize(commitLat);
    const clusterDurable = summarize(durableLat);
    const deliverLat = summarize(deliver);
    const writeInPath = summarize(write);

    // Ingest: every symbol's next 10 bars (quick: 4), published by their owners at once.
    const perSymbol = quick ? 4 : 10;
    const ingest = async (group: { node: ClusterNode; store: TimedStore }[], base: number) => {
      const t = performance.now();
      // Each symbol goes out from its owner (from some node while a late renewal hands it over).
      const share: string[][] = group.map(() => []);
      symbols.forEach((s, i) => {
        const j = group.findIndex((n) => n.node.owns(s));
        share[j >= 0 ? j : i % group.length].push(s);
      });
      await Promise.all(
        group.map(async (n, j) => {
          const mine = share[j];
          for (let k = 0; k < perSymbol; k++) await n.node.publisher.publish(mine.map((s) => bar(s, base + k)));
        }),
      );
      await Promise.all(group.flatMap((n) => symbols.map((s) => n.store.when(s, T0 + (base + perSymbol - 1) * 60_000))));
      return (nSymbols * perSymbol) / ((performance.now() - t) / 1000);
    };
    const changesAfterLatency = nodes.reduce((a, n) => a + n.node.leaseChangesTotal(), 0);
    progress('ingest, three nodes');
    const ticksBefore = nodes.map((n) => n.node.tickStats(true).ticks);
    const clusterRate = await ingest(nodes, 10_000);
    const ticksDuring = nodes.map((n, i) => n.node.tickStats().ticks - ticksBefore[i]);
    const longestTick = Math.max(...nodes.map((n) => n.node.tickStats().longest_ms));
    const rss1 = rssMiB();
    // Leases that moved while nothing joined or left: renewals that came too late (load).
    const churnLatency = changesAfterLatency - changesBefore;
    const churn = nodes.reduce((a, n) => a + n.node.leaseChangesTotal(), 0) - changesAfterLatency;
    // Measured: nodes started from here on need not replay them.
    const admin = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(admin);
    await jsm.streams.purge('BARKEEP_BARS');

    // Failover: drop a node without a word, time until its symbols are all owned by live nodes.
    const failover: number[] = [];
    let live = nodes.slice();
    for (let k = 0; k < kills; k++) {
      progress(`failover ${k + 1}/${kills}`);
      const victim = live[k % live.length];
      const others = live.filter((n) => n !== victim);
      const t = performance.now();
      await victim.node.crash();
      await settle(others.map((n) => n.node));
      failover.push((performance.now() - t) / 1000);
      const fresh = await make(`n${k}`);
      live = [...others, fresh];
      await settle(
        live.map((n) => n.node),
        symbols,
        true,
      );
    }
    for (const n of live) await n.node.stop();

    // One node alone, same ingest.
    progress('ingest, one node');
    await jsm.streams.purge('BARKEEP_BARS');
    await admin.close();
    const soloSyms = symbols;
    const solo = await make('solo', soloSyms);
    await settle([solo.node], soloSyms);
    const soloRate = await ingest([solo], 20_000);
    await solo.node.stop();

    const ratio = clusterLat.p50 / floorLat.p50;
    const ratioP99 = clusterLat.p99 / floorLat.p99;
    // What the path cannot avoid: a fan-out to the three replicas, then a commit in each.
    const pathFloor = fanoutLat.p50 + writeLat.visible.p50;
    const ratioPath = clusterLat.p50 / pathFloor;
    const fo = summarize(failover);
    const ok = (b: boolean) => (b ? 'met' : 'NOT met');
    console.log(
      table(
        ['path', 'n', 'p50 µs', 'p99 µs', 'p99.9 µs'],
        [
          ['floor: raw JetStream publish -> consume', floorLat.n, floorLat.p50, floorLat.p99, floorLat.p999],
          ['floor: raw publish -> 3 consumers', fanoutLat.n, fanoutLat.p50, fanoutLat.p99, fanoutLat.p999],
          ['floor: one bar written, readable (LMDB commit)', writeLat.visible.n, writeLat.visible.p50, writeLat.visible.p99, writeLat.visible.p999],
          ['floor: one bar written, commit resolved', writeLat.commit.n, writeLat.commit.p50, writeLat.commit.p99, writeLat.commit.p999],
          ['floor: one bar written, on disk (fsync)', writeLat.durable.n, writeLat.durable.p50, writeLat.durable.p99, writeLat.durable.p999],
          [`published -> readable in all 3 caches (${nSymbols} symbols)`, clusterLat.n, clusterLat.p50, clusterLat.p99, clusterLat.p999],
          ['  leg: published -> handed to a replica store', deliverLat.n, deliverLat.p50, deliverLat.p99, deliverLat.p999],
          ['  leg: handed to the store -> readable', writeInPath.n, writeInPath.p50, writeInPath.p99, writeInPath.p999],
          ['published -> commit resolved in all 3', clusterCommit.n, clusterCommit.p50, clusterCommit.p99, clusterCommit.p999],
          ['published -> on disk in all 3 (acknowledged)', clusterDurable.n, clusterDurable.p50, clusterDurable.p99, clusterDurable.p999],
        ],
      ),
    );
    console.log(
      `latency (readable in every cache) vs the raw JetStream round trip (the floor, ${Math.round(floorLat.p50)} µs): p50 ${ratio.toFixed(2)}x, p99 ${ratioP99.toFixed(2)}x (goal p50 <= 2x: ${ok(ratio <= 2)})`,
    );
    console.log(
      `latency vs fan-out to 3 + one bar readable (${Math.round(pathFloor)} µs, what the path cannot avoid): p50 ${ratioPath.toFixed(2)}x; on disk everywhere (acknowledged) p50 ${Math.round(clusterDurable.p50)} µs`,
    );
    const scale = clusterRate / soloRate;
    console.log(
      `ingest into every cache: 3 nodes ${Math.round(clusterRate)} bars/s, 1 node alone ${Math.round(soloRate)} bars/s (${scale.toFixed(2)}x; three nodes in one process on ${cpus().length} cores write every bar three times)`,
    );
    console.log(`failover over ${kills} kills (lease TTL ${leaseMs} ms): p50 ${fo.p50.toFixed(2)} s, p99 ${fo.p99.toFixed(2)} s (goal p99 < 10 s: ${ok(fo.p99 < 10)})`);
    console.log(
      `lease changes while no node joined or left (goal 0): ${churnLatency} during latency, ${churn} during ingest (${ok(churnLatency + churn === 0)}); during ingest each node renewed its leases ${ticksDuring.join('/')} times, longest round ${Math.round(longestTick)} ms (TTL ${leaseMs} ms)`,
    );
    console.log(`RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MiB (three nodes in this process)`);
    return {
      symbols: nSymbols,
      floor_publish_consume_us: floorLat,
      floor_publish_fanout3_us: fanoutLat,
      floor_write_readable_us: writeLat.visible,
      floor_write_commit_resolved_us: writeLat.commit,
      floor_write_durable_us: writeLat.durable,
      publish_to_all_caches_readable_us: clusterLat,
      publish_to_all_commits_resolved_us: clusterCommit,
      publish_to_all_disks_us: clusterDurable,
      leg_delivery_us: deliverLat,
      leg_store_to_readable_us: writeInPath,
      ratio_p50: ratio,
      ratio_p99: ratioP99,
      ratio_p50_vs_fanout_plus_readable: ratioPath,
      goals: {
        ratio_p50_max: 2,
        failover_p99_max_s: 10,
        lease_changes_max: 0,
        latency_goal_met: ratio <= 2,
        failover_goal_met: fo.p99 < 10,
        lease_goal_met: churnLatency + churn === 0,
      },
      ingest_bars_per_s: { cluster_3_nodes: clusterRate, one_node: soloRate, ratio: scale },
      failover_s: fo,
      lease_ttl_ms: leaseMs,
      lease_changes_while_measuring: { latency: churnLatency, ingest: churn },
      lease_rounds_during_ingest: { per_node: ticksDuring, longest_ms: longestTick },
      rss_mib: { before: rss0, after: rss1 },
    };
  } finally {
    for (const s of storages) await s.close().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}
