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
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
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
import type { NodeReply, NodeRequest } from './fixtures/cluster-node-thread.ts';

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

const abs = () => performance.timeOrigin + performance.now();
/** The threaded latency's bar indices (the in-process one's start at 1,000, ingest at 10,000 and 20,000). */
const THREADED_BASE = 30_000;
const TS_WORKER = new URL('./fixtures/cluster-ts-worker.mjs', import.meta.url);
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).href;

function spawn(module: string, data: object): Worker {
  return new Worker(TS_WORKER, { workerData: { module: fixture(module), ...data } });
}

function once<T>(w: Worker, test: (m: T) => boolean): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: T) => {
      if (!test(m)) return;
      w.off('message', on);
      w.off('error', reject);
      resolve(m);
    };
    w.on('message', on);
    w.once('error', reject);
  });
}

/**
 * The fan-out floor with each consumer in a worker thread of its own (as each node's replica is in
 * the threaded measure): publish from this thread, stamped on arrival in each consumer's thread.
 */
async function threadedFloor(url: string, samples: number, fanout: number) {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const stream = `BENCH_TFLOOR_${fanout}`;
  await jsm.streams.add({ name: stream, subjects: [`tfloor${fanout}.>`] });
  const js = jetstream(nc);
  const arrived = new Map<number, number[]>();
  let wake: (() => void) | undefined;
  const workers: Worker[] = [];
  for (let c = 0; c < fanout; c++) {
    await jsm.consumers.add(stream, { durable_name: `tfloor${c}`, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All });
    const w = spawn('cluster-floor-thread.ts', { natsUrl: url, stream, durable: `tfloor${c}` });
    await once(w, (m) => m === 'ready');
    w.on('message', (m: unknown) => {
      if (!Array.isArray(m)) return;
      const [i, at] = m as [number, number];
      const got = arrived.get(i) ?? [];
      got.push(at);
      arrived.set(i, got);
      if (got.length === fanout) wake?.();
    });
    workers.push(w);
  }
  const lat: number[] = [];
  for (let i = 0; i < samples; i++) {
    const all = new Promise<void>((r) => (wake = r));
    const t = abs();
    await js.publish(`tfloor${fanout}.x`, JSON.stringify({ i, pad: 'x'.repeat(150) }));
    await all;
    lat.push((Math.max(...arrived.get(i)!) - t) * 1000);
    arrived.delete(i);
  }
  for (const w of workers) {
    w.postMessage('stop');
    await once(w, (m) => m === 'stopped');
    await w.terminate();
  }
  await jsm.streams.delete(stream);
  await nc.close();
  return summarize(lat);
}

/** nats-server's pid, found by its port on the command line (the test helper keeps it to itself). */
function natsPid(port: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0].endsWith('nats-server') && cmd.includes(String(port))) return Number(d);
    } catch {}
  }
  return undefined;
}

/** CPU seconds a process has used (user + system), from /proc. */
function cpuOf(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU used while the nodes sit idle (no bar published), per second of wall time: nats-server's, and
 * this process's (every thread: the nodes' lease renewals and heartbeats).
 */
async function idleCpu(natsUrl: string, ms: number): Promise<{ nats_server: number; nodes: number }> {
  const pid = natsPid(Number(new URL(natsUrl).port));
  const n0 = pid ? cpuOf(pid) : Number.NaN;
  const p0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const wall = (performance.now() - t0) / 1000;
  const p = process.cpuUsage(p0);
  return { nats_server: pid ? (cpuOf(pid) - n0) / wall : Number.NaN, nodes: (p.user + p.system) / 1e6 / wall };
}

/**
 * Three nodes, each in a worker thread of its own (the engine's ClusterNode and BarStore, its own
 * LMDB environment, NATS connections and event loop), and a reader thread: one bar at a time from
 * its owner's publish to readable in every cache, with the stages each node stamps.
 */
async function threadedLatency(opts: { ids: string[]; base: number; natsUrl: string; root: string; symbols: string[]; leaseMs: number; samples: number; progress: (s: string) => void }) {
  const ids = opts.ids;
  const paths = ids.map((id) => join(opts.root, id));
  const sab = new SharedArrayBuffer(32 + 8 * ids.length);
  const ctl = new Int32Array(sab, 0, 8);
  const seen = new Float64Array(sab, 32, ids.length);
  const nodes = ids.map((id, k) => spawn('cluster-node-thread.ts', { id, natsUrl: opts.natsUrl, path: paths[k], symbols: opts.symbols, leaseMs: opts.leaseMs, sab }));
  await Promise.all(nodes.map((w) => once<NodeReply>(w, (m) => m.type === 'ready')));
  const ask = async (w: Worker) => {
    const reply = once<NodeReply>(w, (m) => m.type === 'owned');
    w.postMessage({ type: 'owned' } satisfies NodeRequest);
    return ((await reply) as { owned: string[] }).owned;
  };
  // Every symbol owned once, at its rendezvous winner.
  const winners = assign(opts.symbols, ids);
  for (const since = performance.now(); ; ) {
    const owned = await Promise.all(nodes.map(ask));
    const all = owned.flat();
    if (all.length === opts.symbols.length && new Set(all).size === all.length && owned.every((o, k) => o.every((s) => winners.get(s) === ids[k]))) break;
    if (performance.now() - since > 60_000) throw new Error(`threaded nodes did not settle: ${owned.map((o) => o.length).join(' + ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Before the reader thread starts (loading its modules would count).
  const idle = await idleCpu(opts.natsUrl, opts.samples >= 1000 ? 3000 : 1000);
  const reader = spawn('cluster-reader-thread.ts', { paths, sab, t0: T0 });
  const stamps = new Map<string, Array<{ node: number; decoded: number; handed: number; durable: number; sync: boolean }>>();
  nodes.forEach((w, node) => {
    w.on('message', (m: NodeReply) => {
      if (m.type !== 'stamps') return;
      m.keys.forEach((k, j) => {
        const got = stamps.get(k) ?? [];
        got.push({ node, decoded: m.decoded[j], handed: m.handed, durable: m.durable, sync: m.sync });
        stamps.set(k, got);
      });
    });
  });
  const changes = async () => {
    let n = 0;
    for (const w of nodes) {
      const r = once<NodeReply>(w, (m) => m.type === 'stats');
      w.postMessage({ type: 'stats' } satisfies NodeRequest);
      n += ((await r) as { lease_changes: number }).lease_changes;
    }
    return n;
  };
  const changesBefore = await changes();
  const owners = new Map((await Promise.all(nodes.map(ask))).flatMap((o, k) => o.map((s) => [s, k] as const)));
  opts.progress(`latency, nodes in threads, ${opts.symbols.length} symbols`);
  // Samples alternate: the even ones with the reader thread watching every cache (woken as each
  // node starts its commit, it spins until that commit is readable), the odd ones without it: the
  // stages the nodes stamp themselves (decoded, handed to the store, on disk) are taken from those,
  // free of the reader's CPU.
  const lat: number[] = [];
  const visible: number[] = [];
  const write: number[] = [];
  const watchedDurable: number[] = [];
  const ack: number[] = [];
  const decoded: number[] = [];
  const handed: number[] = [];
  const durable: number[] = [];
  const allDurable: number[] = [];
  let onThread = 0;
  let written = 0;
  for (let i = 0; i < opts.samples; i++) {
    const watch = i % 2 === 0;
    const idx = (i * 7919) % opts.symbols.length;
    const s = opts.symbols[idx];
    // Bars of their own: the same bar published again later would be a duplicate, dropped.
    const b = bar(s, opts.base + i);
    const key = `${s}|${b.start}`;
    let answered: Promise<string> | string = '';
    if (watch) {
      // The reader takes its bearings before the publish (the commits it is to wait for come after).
      Atomics.store(ctl, 1, idx);
      Atomics.store(ctl, 2, opts.base + i);
      const gen = Atomics.add(ctl, 0, 1) + 1;
      Atomics.notify(ctl, 0);
      while (Atomics.load(ctl, 3) !== gen) await new Promise((r) => setImmediate(r));
      answered = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { value: Promise<string> | string } }).waitAsync(ctl, 4, gen - 1).value;
    }
    let pub: NodeReply & { type: 'published' };
    for (let k = owners.get(s)!; ; k = (k + 1) % nodes.length) {
      const reply = once<NodeReply>(nodes[k], (m) => m.type === 'published' && m.key === key);
      nodes[k].postMessage({ type: 'publish', bar: b } satisfies NodeRequest);
      pub = (await reply) as typeof pub;
      if (pub.owner) break;
      // A lease moved (counted below): ask the next node.
    }
    await answered;
    while ((stamps.get(key)?.length ?? 0) < nodes.length) await new Promise((r) => setTimeout(r, 1));
    const t0 = pub.t0;
    const st = stamps.get(key)!;
    stamps.delete(key);
    const lastDurable = (Math.max(...st.map((x) => x.durable)) - t0) * 1000;
    for (const x of st) {
      written++;
      if (x.sync) onThread++;
    }
    if (watch) {
      lat.push((Math.max(...seen) - t0) * 1000);
      for (const x of st) {
        visible.push((seen[x.node] - t0) * 1000);
        write.push((seen[x.node] - x.handed) * 1000);
      }
      watchedDurable.push(lastDurable);
      continue;
    }
    ack.push((pub.ack - t0) * 1000);
    for (const x of st) {
      decoded.push((x.decoded - t0) * 1000);
      handed.push((x.handed - t0) * 1000);
      durable.push((x.durable - t0) * 1000);
    }
    allDurable.push(lastDurable);
  }
  const churn = (await changes()) - changesBefore;
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  await new Promise((r) => reader.once('exit', r));
  for (const w of nodes) {
    const stopped = once<NodeReply>(w, (m) => m.type === 'stopped');
    w.postMessage({ type: 'stop' } satisfies NodeRequest);
    await stopped;
    await w.terminate();
  }
  return {
    readable_all: summarize(lat),
    publish_ack: summarize(ack),
    decoded: summarize(decoded),
    handed: summarize(handed),
    visible_each: summarize(visible),
    store_to_readable: summarize(write),
    durable_each: summarize(durable),
    durable_all: summarize(allDurable),
    durable_all_watched: summarize(watchedDurable),
    written_on_thread: onThread / written,
    lease_changes: churn,
    idle_cpu_cores: idle,
    durables: ids.map((id) => `replica_${Buffer.from(id).toString('hex')}`),
  };
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
    progress('floor: fan-out to consumers in threads');
    const fanoutThreadsLat = await threadedFloor(nats.url, samples, 3);

    // Three nodes in threads with every symbol, then three others with 300 of them: the same path
    // with a seventeenth of the lease renewals (each node renews every lease it holds every third of
    // the TTL) beside it on the same server and cores.
    const fewSymbols = symbols.slice(0, Math.min(300, nSymbols));
    const runThreaded = async (ids: string[], base: number, syms: string[]) => {
      progress(`three nodes in threads taking ${syms.length} symbols`);
      const r = await threadedLatency({ ids, base, natsUrl: nats.url, root, symbols: syms, leaseMs, samples, progress });
      // Their consumers and bars are not the next nodes' business.
      const admin = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(admin);
      for (const d of r.durables) await jsm.consumers.delete('BARKEEP_BARS', d).catch(() => undefined);
      await jsm.streams.purge('BARKEEP_BARS').catch(() => undefined);
      await admin.close();
      return r;
    };
    const threaded = await runThreaded(['ta', 'tb', 'tc'], THREADED_BASE, symbols);
    // (--quick has 300 symbols in all: the same run.)
    const threadedFew = fewSymbols.length < nSymbols ? await runThreaded(['ua', 'ub', 'uc'], THREADED_BASE + samples, fewSymbols) : threaded;

    progress(`three nodes in this thread taking ${nSymbols} symbols`);
    const nodes = [await make('a'), await make('b'), await make('c')];
    await settle(
      nodes.map((n) => n.node),
      symbols,
      true,
    );
    // Latency: one bar at a time, from its owner's publish to durable in the last of the three caches.
    const changesBefore = nodes.reduce((a, n) => a + n.node.leaseChangesTotal(), 0);
    progress('latency, nodes in this thread');
    // Three replicas on one thread write through lmdb-js's writer threads (bar-replication.ts).
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

    const tl = threaded.readable_all;
    // The headline: nodes each in a thread of their own, as a real cluster's are in processes.
    const ratio = tl.p50 / floorLat.p50;
    const ratioP99 = tl.p99 / floorLat.p99;
    const ratioOneLoop = clusterLat.p50 / floorLat.p50;
    // What the path cannot avoid: a fan-out to the three replicas, then a commit in each.
    const pathFloor = fanoutThreadsLat.p50 + writeLat.visible.p50;
    const ratioPath = tl.p50 / pathFloor;
    const fo = summarize(failover);
    const ok = (b: boolean) => (b ? 'met' : 'NOT met');
    const row = (name: string, x: { n: number; p50: number; p99: number; p999: number }) => [name, x.n, x.p50, x.p99, x.p999];
    console.log(
      table(
        ['path', 'n', 'p50 µs', 'p99 µs', 'p99.9 µs'],
        [
          row('floor: raw JetStream publish -> consume', floorLat),
          row('floor: raw publish -> 3 consumers (one thread)', fanoutLat),
          row('floor: raw publish -> 3 consumers (a thread each)', fanoutThreadsLat),
          row('floor: one bar written, readable (LMDB commit)', writeLat.visible),
          row('floor: one bar written, commit resolved', writeLat.commit),
          row('floor: one bar written, on disk (fsync)', writeLat.durable),
          row(`published -> readable in all 3 caches, nodes in threads (${nSymbols} symbols) ¹`, tl),
          row('  stage: readable in a cache (each) ¹', threaded.visible_each),
          row('  leg: handed to the store -> readable (each) ¹', threaded.store_to_readable),
          row('  published -> on disk in all 3 ¹', threaded.durable_all_watched),
          row('published -> on disk in all 3, nodes in threads ²', threaded.durable_all),
          row('  stage: publish acknowledged to the owner ²', threaded.publish_ack),
          row('  stage: delivered + decoded in a replica (each) ²', threaded.decoded),
          row('  stage: handed to the store (each) ²', threaded.handed),
          row('  stage: on disk, acknowledged (each) ²', threaded.durable_each),
          row(`published -> readable in all 3 caches, nodes in threads, ${fewSymbols.length} symbols ¹`, threadedFew.readable_all),
          row(`published -> on disk in all 3, nodes in threads, ${fewSymbols.length} symbols ²`, threadedFew.durable_all),
          row(`  stage: delivered + decoded in a replica (each), ${fewSymbols.length} symbols ²`, threadedFew.decoded),
          row(`published -> readable in all 3 caches, nodes in one thread`, clusterLat),
          row('  leg: published -> handed to a replica store', deliverLat),
          row('  leg: handed to the store -> readable', writeInPath),
          row('  published -> commit resolved in all 3', clusterCommit),
          row('  published -> on disk in all 3', clusterDurable),
        ],
      ),
    );
    console.log('¹ samples with the reader thread watching the caches (woken as a node starts its commit, it spins until readable); ² the other half, without it');
    console.log(
      `latency, nodes in threads (readable in every cache) vs the raw JetStream round trip (the floor, ${Math.round(floorLat.p50)} µs): p50 ${ratio.toFixed(2)}x, p99 ${ratioP99.toFixed(2)}x (goal p50 <= 2x: ${ok(ratio <= 2)}); nodes in one thread p50 ${ratioOneLoop.toFixed(2)}x`,
    );
    console.log(
      `the same with ${fewSymbols.length} symbols (a seventeenth of the lease renewals at 5,000): readable in all 3 p50 ${Math.round(threadedFew.readable_all.p50)} µs = ${(threadedFew.readable_all.p50 / floorLat.p50).toFixed(2)}x the floor; on disk in all 3 p50 ${Math.round(threadedFew.durable_all.p50)} µs`,
    );
    const cores = (x: { nats_server: number; nodes: number }) => `nats-server ${x.nats_server.toFixed(2)}, the three nodes ${x.nodes.toFixed(2)}`;
    console.log(
      `CPU while the nodes in threads sit idle (cores busy, of ${cpus().length}): ${nSymbols} symbols: ${cores(threaded.idle_cpu_cores)}; ${fewSymbols.length} symbols: ${cores(threadedFew.idle_cpu_cores)}`,
    );
    console.log(
      `latency vs fan-out to 3 threads + one bar readable (${Math.round(pathFloor)} µs, what the path cannot avoid): p50 ${ratioPath.toFixed(2)}x; on disk everywhere (acknowledged) p50 ${Math.round(threaded.durable_all.p50)} µs; ${(threaded.written_on_thread * 100).toFixed(0)}% of the replica writes on the node's thread`,
    );
    const scale = clusterRate / soloRate;
    console.log(
      `ingest into every cache: 3 nodes ${Math.round(clusterRate)} bars/s, 1 node alone ${Math.round(soloRate)} bars/s (${scale.toFixed(2)}x; three nodes in one process on ${cpus().length} cores write every bar three times)`,
    );
    console.log(`failover over ${kills} kills (lease TTL ${leaseMs} ms): p50 ${fo.p50.toFixed(2)} s, p99 ${fo.p99.toFixed(2)} s (goal p99 < 10 s: ${ok(fo.p99 < 10)})`);
    console.log(
      `lease changes while no node joined or left (goal 0): ${threaded.lease_changes}/${threadedFew.lease_changes} during latency in threads, ${churnLatency} during latency in one thread, ${churn} during ingest (${ok(churnLatency + churn + threaded.lease_changes + threadedFew.lease_changes === 0)}); during ingest each node renewed its leases ${ticksDuring.join('/')} times, longest round ${Math.round(longestTick)} ms (TTL ${leaseMs} ms)`,
    );
    console.log(`RSS ${rss0.toFixed(0)} -> ${rss1.toFixed(0)} MiB (three nodes in this process)`);
    return {
      symbols: nSymbols,
      floor_publish_consume_us: floorLat,
      floor_publish_fanout3_us: fanoutLat,
      floor_write_readable_us: writeLat.visible,
      floor_write_commit_resolved_us: writeLat.commit,
      floor_write_durable_us: writeLat.durable,
      floor_publish_fanout3_threads_us: fanoutThreadsLat,
      publish_to_all_caches_readable_us: tl,
      threaded: threaded,
      threaded_few_symbols: { symbols: fewSymbols.length, ...threadedFew },
      one_thread_publish_to_all_caches_readable_us: clusterLat,
      one_thread_leg_delivery_us: deliverLat,
      one_thread_leg_store_to_readable_us: writeInPath,
      one_thread_publish_to_all_disks_us: clusterDurable,
      one_thread_publish_to_all_commits_resolved_us: clusterCommit,
      publish_to_all_disks_us: threaded.durable_all,
      ratio_p50: ratio,
      ratio_p99: ratioP99,
      ratio_p50_vs_fanout_plus_readable: ratioPath,
      ratio_p50_nodes_in_one_thread: ratioOneLoop,
      ratio_p50_few_symbols: threadedFew.readable_all.p50 / floorLat.p50,
      goals: {
        ratio_p50_max: 2,
        failover_p99_max_s: 10,
        lease_changes_max: 0,
        latency_goal_met: ratio <= 2,
        failover_goal_met: fo.p99 < 10,
        lease_goal_met: churnLatency + churn + threaded.lease_changes + threadedFew.lease_changes === 0,
      },
      ingest_bars_per_s: { cluster_3_nodes: clusterRate, one_node: soloRate, ratio: scale },
      failover_s: fo,
      lease_ttl_ms: leaseMs,
      lease_changes_while_measuring: { latency_threads: threaded.lease_changes, latency_threads_few_symbols: threadedFew.lease_changes, latency: churnLatency, ingest: churn },
      lease_rounds_during_ingest: { per_node: ticksDuring, longest_ms: longestTick },
      rss_mib: { before: rss0, after: rss1 },
    };
  } finally {
    for (const s of storages) await s.close().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}
