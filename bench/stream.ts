/**
 * Stream benchmark: how stale a bar is when the strategy sees it, on the stream and on REST polling.
 *
 * The whole engine runs (collector, arbiter and the real trader actor in worker threads, LMDB in a
 * temp folder) against the Massive fake (REST and WebSocket on 127.0.0.1), on a shared clock. The
 * strategy is bench/fixtures/stream-probe-strategy.ts: its onBar, in the trader thread, stamps the
 * wall time, and what one trader turn stamped is posted to this thread after that turn. Each row's
 * floor is the same frames at a plain `ws` client in its own worker thread
 * (bench/fixtures/stream-floor-client.mjs): socket, WebSocket framing and JSON.parse, nothing of the
 * engine; this thread neither parses for it nor waits for it.
 *
 * 1. REST poll (massive.websocket off): staleness = onBar - the minute's close, in wall ms. Around
 *    each close the shared clock runs at real speed, so the settle wait (collector.settle_s), the
 *    request, the write and the hand-over are all real time, as in production.
 * 2. Stream (massive.websocket on), 5 symbols, each bar alone in its frame, 150 simulated minutes at
 *    60x: frame sent at the close -> onBar, beside the floor.
 * 3. Burst: 5,000 symbols each send their minute bar in the same second (clock at 10x from 09:00 New
 *    York). The fake packs them as Massive does (every frame a JSON array of several events:
 *    docs/market-data.md), 100 AM events to a frame (~14 KB), 50 frames per close, for 30 simulated
 *    minutes; then, on the same engine, 10 minutes with one bar per frame (5,000 frames per close),
 *    reported beside its floor without a goal, so the packing hides no cost. Each bar's send time is
 *    its frame's, stamped after the frame is encoded and just before it goes out (to the engine and
 *    to the floor client). Every bar must be written and delivered. Each packed minute prints a
 *    row: its p50/max, each actor thread's busy time (event loop active), and the process's memory
 *    split as the kernel counts it (RssAnon, RssFile, RssShmem), the LMDB file's pages resident in
 *    it, every V8 heap, and each actor's heap (reported by the thread itself).
 *
 * Goals (issue 9): stream p99 under 20 ms; REST p50 at least 100x the stream p50; packed burst p99
 * under 250 ms with every bar delivered; memory flat: the process's own memory (RssAnon) at the
 * last packed minutes within 10% of minute 11 (medians of three minutes). The total RSS is printed
 * beside it: its file-backed part grows with the LMDB file as the cache takes 5,000 bars a minute.
 * The full run takes about 8 minutes (150 simulated stream minutes at 60x, 40 burst minutes at 10x).
 *
 *   npm run bench -- stream [--quick]
 *   npm run bench -- stream --burst-only [--burst-minutes=8] [--symbols=5000]   # the packed burst alone, per minute
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pino from 'pino';
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/load.ts';
import type { Bar } from '../src/market/bar.ts';
import type { CollectorStatus } from '../src/actors/collector/protocol.ts';
import type { Clock } from '../src/market/clock.ts';
import { AcceleratedClock, type ClockSpec, SharedClockController } from '../src/runtime/clock.ts';
import { startEngine, type Engine } from '../src/server/engine.ts';
import { generatedBars } from '../test/fakes/massive/generated-bars.ts';
import { type FakeMassive, startFakeMassive } from '../test/fakes/massive/server.ts';
import { DEFAULT_EVENTS_PER_FRAME } from '../test/fakes/pack-frames.ts';
import { fmt, rssMiB, summarize, table, type Summary } from './stats.ts';

const MIN = 60_000;
/** Events per frame in the packed burst: the fakes' default (docs/market-data.md: one frame holds several events). */
const PER_FRAME = DEFAULT_EVENTS_PER_FRAME;
const KEY = 'bench-stream-massive-key';
const T0 = Date.parse('2026-03-11T14:00:00Z'); // Wednesday 10:00 New York
const silent = pino({ level: 'silent' });
const PROBE = fileURLToPath(new URL('./fixtures/stream-probe-strategy.ts', import.meta.url));
const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function symbolName(i: number): string {
  let s = '';
  for (let k = 0; k < 4; k++) {
    s = String.fromCharCode(65 + (i % 26)) + s;
    i = Math.floor(i / 26);
  }
  return `S${s}`;
}

/** onBar times posted by the probe strategy in the trader thread (one message per trader turn), by bar start. */
class Probe {
  private readonly seen = new Map<number, Map<string, number>>();
  private readonly ch = new BroadcastChannel('barkeep-bench-stream');
  constructor() {
    this.ch.onmessage = (ev: MessageEvent) => {
      const [symbols, starts, times] = ev.data as [string[], number[], number[]];
      for (let i = 0; i < symbols.length; i++) this.minute(starts[i]).set(symbols[i], times[i]);
    };
  }
  /** onBar times of the bars that started at `start`, by symbol. */
  minute(start: number): Map<string, number> {
    let m = this.seen.get(start);
    if (!m) this.seen.set(start, (m = new Map()));
    return m;
  }
  count(start: number): number {
    return this.seen.get(start)?.size ?? 0;
  }
  forget(start: number): void {
    this.seen.delete(start);
  }
  close(): void {
    this.ch.close();
  }
}

interface Rig {
  fake: FakeMassive;
  engine: Engine;
  now(): number;
  dir: string;
  stop(): Promise<void>;
}

/**
 * The engine and the fake on one clock: `manual` (the shared clock this thread moves) or
 * `accelerated` (simulated time running `speed` times faster than the wall clock).
 */
async function rig(
  symbols: string[],
  websocket: boolean,
  opts: { generate: boolean; reconcileS: number; clock: { kind: 'manual'; ctl: SharedClockController } | { kind: 'accelerated'; speed: number; start: number } },
): Promise<Rig> {
  let spec: ClockSpec;
  let clock: Clock;
  if (opts.clock.kind === 'manual') {
    spec = opts.clock.ctl.spec;
    clock = opts.clock.ctl.clock;
  } else {
    const realStart = Date.now();
    spec = { kind: 'accelerated', simStart: opts.clock.start, realStart, speed: opts.clock.speed };
    clock = new AcceleratedClock(opts.clock.start, realStart, opts.clock.speed);
  }
  const fake = await startFakeMassive({ validKeys: [KEY], clock, generate: opts.generate });
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-stream-'));
  const config = loadConfig({
    env: { MASSIVE_API_KEY: KEY },
    overrides: {
      data_dir: dir,
      log: { level: 'silent' },
      server: { port: 0 },
      massive: { rest_url: fake.url, rate_limit_per_min: 1_000_000, websocket },
      collector: { autostart: true, symbols, bar_size: '1Min', backfill_days: 1, reconcile_interval_s: opts.reconcileS },
      trader: { autostart: true, symbols, bar_size: '1Min', strategy: 'module', strategy_module: PROBE, strategy_params: {} },
      feed: { preload_bars: 5 },
    },
  });
  const engine = await startEngine(config, { log: silent, clock: spec });
  return {
    fake,
    engine,
    now: () => clock.now(),
    dir,
    async stop() {
      await engine.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function collectorStatus(r: Rig): Promise<CollectorStatus> {
  return (await (await fetch(`${r.engine.url}/data-collector/status`)).json()) as CollectorStatus;
}

async function waitFor(cond: () => boolean, guardMs: number): Promise<boolean> {
  const end = Date.now() + guardMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(1);
  }
  return true;
}

/** REST polling: the clock runs at real speed from just before each close until every bar is in onBar. */
export async function restPath(symbols: string[], minutes: number): Promise<{ staleness_ms: Summary; missing: number }> {
  const probe = new Probe();
  const ctl = new SharedClockController(T0);
  const r = await rig(symbols, false, { generate: true, reconcileS: 300, clock: { kind: 'manual', ctl } });
  const lat: number[] = [];
  let missing = 0;
  try {
    for (let m = 1; m <= minutes + 1; m++) {
      const close = T0 + m * MIN;
      const start = close - MIN;
      ctl.set(close - 20);
      await sleep(5);
      const wall0 = wallMs() + 20; // wall time at which the clock reaches the close
      const realTime = setInterval(() => ctl.set(close - 20 + (wallMs() - (wall0 - 20))), 1);
      const all = await waitFor(() => probe.count(start) >= symbols.length, 20_000);
      clearInterval(realTime);
      if (process.env.BENCH_DEBUG) console.log('rest minute', m, all, probe.count(start), r.fake.requests);
      if (m === 1) continue; // warm-up: the backfill and the trader's start
      for (const s of symbols) {
        const at = probe.minute(start).get(s);
        if (at === undefined) missing++;
        else lat.push(at - wall0);
      }
      probe.forget(start);
      if (!all) console.log(`rest: minute ${m} incomplete`);
    }
  } finally {
    await r.stop();
    ctl.close();
    probe.close();
  }
  return { staleness_ms: summarize(lat), missing };
}

/**
 * The transport floor: a plain `ws` client of the fake's stream in its own worker thread
 * (bench/fixtures/stream-floor-client.mjs), as the engine's collector is in its own; the sending
 * thread does no parsing for it. `take` resolves with the arrival times of a minute's events.
 */
async function floorClient(fake: FakeMassive, symbols: string[]): Promise<{ take(start: number, count: number): Promise<Map<string, number>>; close(): Promise<void> }> {
  const worker = new Worker(new URL('./fixtures/stream-floor-client.mjs', import.meta.url), {
    workerData: { url: `${fake.url.replace('http:', 'ws:')}/stocks`, key: KEY, symbols },
  });
  const takes = new Map<number, (m: Map<string, number>) => void>();
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (msg: 'ready' | { error: string } | { start: number; symbols: string[]; times: number[] }) => {
      if (msg === 'ready') return resolve();
      if ('error' in msg) return reject(new Error(`floor client: ${msg.error}`));
      const got = new Map<string, number>();
      for (let i = 0; i < msg.symbols.length; i++) got.set(msg.symbols[i], msg.times[i]);
      takes.get(msg.start)?.(got);
      takes.delete(msg.start);
    });
  });
  return {
    take: (start, count) =>
      new Promise((resolve) => {
        takes.set(start, resolve);
        worker.postMessage({ start, count });
      }),
    async close() {
      worker.postMessage('close');
      await worker.terminate();
    },
  };
}

function bar(symbol: string, start: number, generated: boolean): Bar {
  if (generated) return generatedBars(symbol, '1Min', start, start, 'massive')[0];
  const o = 50 + ((start / MIN) % 7);
  return { symbol, barSize: '1Min', start, open: o, high: o + 1, low: o - 1, close: o + 0.5, volume: 1000, vwap: o + 0.1, trades: 20, source: 'massive', receivedAt: 0 };
}

/** One phase of a stream run: `minutes` minute closes, each sending every symbol's bar in frames of `perFrame` events. */
interface Phase {
  minutes: number;
  perFrame: number;
}

/** One minute of a phase: its latencies and the process's memory right after it. */
interface MinuteRow {
  minute: number;
  on_bar_p50_ms: number;
  on_bar_max_ms: number;
  floor_max_ms: number;
  /** Each actor thread's busy time (event loop active), wall ms, from the close to just after its bars reached onBar: the close's CPU demand, less sensitive to machine load than latency. */
  busy_ms: Record<string, number>;
  memory: MemorySample;
}

/**
 * Where the memory is, MiB: the process RSS split as the kernel accounts it (/proc/self/status:
 * RssAnon is memory the process owns, RssFile the file pages mapped in, the LMDB cache's pages
 * among them, RssShmem shared memory), this thread's V8 heap and off-heap memory, and each actor
 * thread's heap (reported by the thread itself, src/runtime/counters.ts).
 */
interface MemorySample {
  rss: number;
  anon: number;
  file: number;
  shmem: number;
  heap_used: number;
  external: number;
  array_buffers: number;
  /** Every V8 heap of the process as committed in memory: this thread's and the actors'. */
  heaps_physical: number;
  /** The LMDB data file's allocated size (the cache, checkpoints and delivery log). */
  lmdb_file: number;
  /** Of RssFile: the LMDB file's pages resident in this process, summed over its mappings (each thread that opens the store maps it). */
  lmdb_resident: number;
  lmdb_mappings: number;
  actors: Record<string, { heap_used: number; external: number; active_ms: number }>;
}

const MiB = 1024 * 1024;

/** Each actor thread's busy time so far, ms (sampled by the thread every 200 ms). */
function busyMs(r: Rig): Record<string, number> {
  return Object.fromEntries(r.engine.supervisor.names().map((name) => [name, r.engine.supervisor.counters(name).activeMs]));
}

function memorySample(r: Rig): MemorySample {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  const m = process.memoryUsage();
  const actors: MemorySample['actors'] = {};
  let physical = getHeapStatistics().total_physical_size;
  for (const name of r.engine.supervisor.names()) {
    const c = r.engine.supervisor.counters(name);
    actors[name] = { heap_used: c.heapUsedBytes / MiB, external: c.externalBytes / MiB, active_ms: c.activeMs };
    physical += c.heapPhysicalBytes;
  }
  let lmdb = NaN;
  try {
    lmdb = (statSync(join(r.dir, 'data.mdb')).blocks * 512) / MiB;
  } catch {}
  // /proc/self/smaps: each mapping's header line names its file; its Rss line follows.
  let lmdbKb = 0;
  let mappings = 0;
  let inLmdb = false;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inLmdb = line.endsWith('/data.mdb');
      if (inLmdb) mappings++;
    } else if (inLmdb && line.startsWith('Rss:')) lmdbKb += Number(/(\d+)/.exec(line)?.[1] ?? 0);
  }
  return {
    rss: m.rss / MiB,
    anon: kb('RssAnon'),
    file: kb('RssFile'),
    shmem: kb('RssShmem'),
    heap_used: m.heapUsed / MiB,
    external: m.external / MiB,
    array_buffers: m.arrayBuffers / MiB,
    heaps_physical: physical / MiB,
    lmdb_file: lmdb,
    lmdb_resident: lmdbKb / 1024,
    lmdb_mappings: mappings,
    actors,
  };
}

interface StreamFigures {
  per_frame: number;
  minutes: number;
  /** Frames sent to the engine per minute close (the floor client gets as many). */
  frames_per_minute: number;
  frame_to_on_bar_ms: Summary;
  frame_to_floor_client_ms: Summary;
  sent: number;
  delivered: number;
  rss_mib: number[];
  /** Memory the process owns (RssAnon), MiB, per minute. */
  anon_mib: number[];
  /** File pages mapped in (RssFile: the binaries and the LMDB file), MiB, per minute. */
  file_mib: number[];
  /** Each minute's latency and memory. */
  per_minute: MinuteRow[];
}

/**
 * The stream: simulated time runs `speed` times faster than the wall clock (the stream's pings,
 * auth timeout and backoff stay in proportion); at each minute's close the fake sends every
 * symbol's bar at once, packed `perFrame` events to a frame (the phases run one after the other on
 * the same engine; a warm-up minute before the first). Each bar's send time is its frame's: stamped
 * after the frame is encoded, just before it goes out to the engine and the floor client.
 */
export async function streamPath(symbols: string[], phases: Phase[], opts: { generate: boolean; reconcileS: number; speed: number; start?: number }): Promise<StreamFigures[]> {
  const probe = new Probe();
  const r = await rig(symbols, true, { ...opts, clock: { kind: 'accelerated', speed: opts.speed, start: opts.start ?? T0 } });
  const out: StreamFigures[] = [];
  const floor = await floorClient(r.fake, symbols);
  try {
    // Ready: the stream is live and the startup backfill is done.
    let st = await collectorStatus(r);
    // Polled every 250 ms: the status of thousands of symbols is not free for the collector.
    for (const end = Date.now() + 300_000; !(st.mode === 'stream' && st.cycles >= 1) && Date.now() < end; st = await collectorStatus(r)) await sleep(250);
    if (st.mode !== 'stream') throw new Error(`the collector's stream never came up: ${JSON.stringify(st.streams)}`);
    const sentAt = new Float64Array(symbols.length);
    const index = new Map(symbols.map((s, i) => [s, i]));
    const nextClose = async () => {
      // The next close from now: a slow minute (machine load) must not leave the rest behind.
      const close = Math.floor(r.now() / MIN) * MIN + MIN;
      while (r.now() < close) await sleep(Math.max(1, Math.min(50, (close - r.now()) / opts.speed)));
      return close - MIN;
    };
    const push = (start: number, perFrame: number) => {
      const bars = symbols.map((s) => bar(s, start, opts.generate));
      return r.fake.stream.pushMinuteBars(bars, {
        perFrame,
        onFrame(from, to) {
          const t = wallMs();
          for (let i = from; i < to; i++) sentAt[i] = t;
        },
      });
    };
    {
      // A warm-up minute: with an empty cache its bars are the strategy's warm-up, not live bars,
      // so it waits for them to be written, not for onBar.
      const start = await nextClose();
      const writtenBefore = (await collectorStatus(r)).bars_written;
      push(start, phases[0].perFrame);
      for (const end = Date.now() + 20_000; Date.now() < end && probe.count(start) < symbols.length && (await collectorStatus(r)).bars_written < writtenBefore + symbols.length; ) await sleep(100);
      await sleep(200);
      probe.forget(start);
      await floor.take(start, symbols.length);
    }
    for (const phase of phases) {
      const lat: number[] = [];
      const floorLat: number[] = [];
      const rss: number[] = [];
      const anon: number[] = [];
      const file: number[] = [];
      const perMinute: MinuteRow[] = [];
      let sent = 0;
      let delivered = 0;
      let frames = 0;
      for (let m = 0; m < phase.minutes; m++) {
        const start = await nextClose();
        // Each actor's busy time from here to just after the minute's bars are all at onBar: the
        // close's own work (what ran between closes, a tick or the warm-up's tail, is not in it).
        const busyBefore = busyMs(r);
        frames += push(start, phase.perFrame).frames;
        const all = await waitFor(() => probe.count(start) >= symbols.length, 20_000);
        const seen = probe.minute(start);
        if (!all) {
          const h = (await collectorStatus(r)).streams.massive;
          console.log(`stream: minute ${m}: ${symbols.length - seen.size} of ${symbols.length} not at onBar after 20 s; stream ${h?.state}, reconnects ${h?.reconnects}, stalls ${h?.stalls}`);
        }
        const fl = await floor.take(start, symbols.length);
        sent += symbols.length;
        const minuteLat: number[] = [];
        let floorMax = -Infinity;
        for (const [s, at] of seen) {
          const i = index.get(s);
          if (i === undefined) continue;
          delivered++;
          minuteLat.push(at - sentAt[i]);
        }
        for (const [s, at] of fl) {
          const i = index.get(s);
          if (i === undefined) continue;
          floorLat.push(at - sentAt[i]);
          floorMax = Math.max(floorMax, at - sentAt[i]);
        }
        for (const x of minuteLat) lat.push(x);
        probe.forget(start);
        // The actor threads report their heap and busy time every 200 ms (src/runtime/counters.ts):
        // at the burst's pace (a minute is 6 s) a short wait lets this minute's work be counted in it.
        if (opts.speed <= 10) await sleep(250);
        const memory = memorySample(r);
        rss.push(rssMiB());
        anon.push(memory.anon);
        file.push(memory.file);
        const ms = summarize(minuteLat);
        const busy: Record<string, number> = {};
        for (const [name, a] of Object.entries(memory.actors)) busy[name] = a.active_ms - (busyBefore[name] ?? 0);
        perMinute.push({ minute: m + 1, on_bar_p50_ms: ms.p50, on_bar_max_ms: ms.max, floor_max_ms: floorMax, busy_ms: busy, memory });
      }
      out.push({
        per_frame: phase.perFrame,
        minutes: phase.minutes,
        // Frames to the engine: half of what went out (the floor client gets the same frames).
        frames_per_minute: frames / 2 / phase.minutes,
        frame_to_on_bar_ms: summarize(lat),
        frame_to_floor_client_ms: summarize(floorLat),
        sent,
        delivered,
        rss_mib: rss,
        anon_mib: anon,
        file_mib: file,
        per_minute: perMinute,
      });
    }
  } finally {
    await floor.close();
    await r.stop();
    probe.close();
  }
  return out;
}

/** `--NAME=N` on the command line, else `fallback`. */
function numberArg(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const n = arg === undefined ? NaN : Number(arg.slice(name.length + 3));
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** Each minute's p50/max beside the memory, MiB (the phase diagnostic: a slow first minute or a growth shows here). */
function perMinuteTable(rows: MinuteRow[]): string {
  const actors = [...new Set(rows.flatMap((r) => Object.keys(r.memory.actors)))];
  return table(
    [
      'min',
      'p50',
      'max',
      'floor max',
      ...actors.map((a) => `${a} busy`),
      'RSS',
      'anon',
      'file',
      'shmem',
      'LMDB file',
      'V8 heaps',
      'heap',
      'external',
      'arrayBuf',
      ...actors.map((a) => `${a} heap/ext`),
    ],
    rows.map((r) => {
      const m = r.memory;
      return [
        String(r.minute),
        fmt(r.on_bar_p50_ms, 0),
        fmt(r.on_bar_max_ms, 0),
        fmt(r.floor_max_ms, 0),
        ...actors.map((a) => fmt(r.busy_ms[a] ?? NaN, 0)),
        fmt(m.rss, 0),
        fmt(m.anon, 0),
        fmt(m.file, 0),
        fmt(m.shmem, 0),
        `${fmt(m.lmdb_resident, 0)}/${fmt(m.lmdb_file, 0)}`,
        fmt(m.heaps_physical, 0),
        fmt(m.heap_used, 0),
        fmt(m.external, 0),
        fmt(m.array_buffers, 0),
        ...actors.map((a) => `${fmt(m.actors[a]?.heap_used ?? NaN, 0)}/${fmt(m.actors[a]?.external ?? NaN, 0)}`),
      ];
    }),
  );
}

/**
 * The packed burst alone, in one-minute rows (`--burst-only`, `--burst-minutes=N`, `--symbols=N`):
 * each minute's p50/max and the memory split, to see where a slow minute or a growth is.
 */
async function burstOnly(quick: boolean): Promise<Record<string, unknown>> {
  const n = numberArg('symbols', quick ? 1_000 : 5_000);
  const minutes = numberArg('burst-minutes', quick ? 5 : 8);
  const burstSymbols = Array.from({ length: n }, (_, i) => symbolName(i));
  const [burst] = await streamPath(burstSymbols, [{ minutes, perFrame: PER_FRAME }], { generate: false, reconcileS: 86_400, speed: 10, start: Date.parse('2026-03-11T13:00:00Z') });
  console.log(
    `packed burst alone: ${n} symbols, ${minutes} minutes, ${burst.delivered}/${burst.sent} delivered; frame -> onBar p50 ${fmt(burst.frame_to_on_bar_ms.p50, 1)} p99 ${fmt(burst.frame_to_on_bar_ms.p99, 1)} ms (floor ${fmt(burst.frame_to_floor_client_ms.p50, 1)} / ${fmt(burst.frame_to_floor_client_ms.p99, 1)})`,
  );
  console.log(perMinuteTable(burst.per_minute));
  console.log(
    `load average ${loadavg()
      .map((x) => fmt(x, 1))
      .join(' ')}`,
  );
  return { symbols: n, burst_only: burst };
}

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const quick = Boolean(opts.quick);
  if (process.argv.includes('--burst-only')) return burstOnly(quick);
  const t0 = Date.now();
  const symbols = Array.from({ length: 5 }, (_, i) => symbolName(i));
  const rest = await restPath(symbols, quick ? 3 : 10);
  // Five symbols, each bar alone in its frame (as before the packing, and the stream's worst case).
  const [stream] = await streamPath(symbols, [{ minutes: quick ? 20 : 150, perFrame: 1 }], { generate: true, reconcileS: 300, speed: 60 });
  const burstSymbols = Array.from({ length: quick ? 1_000 : 5_000 }, (_, i) => symbolName(i));
  // 10x, from 09:00 New York: the start (5,000 REST backfills) takes real seconds, which must not
  // count as a silent stream in session (the stall watchdog) or as a slow authentication. 30
  // simulated minutes packed as the vendor sends them, then 10 with one bar per frame, on the same
  // engine: 4 real minutes.
  const [burst, single] = await streamPath(
    burstSymbols,
    [
      { minutes: quick ? 5 : 30, perFrame: PER_FRAME },
      { minutes: quick ? 2 : 10, perFrame: 1 },
    ],
    { generate: false, reconcileS: 86_400, speed: 10, start: Date.parse('2026-03-11T13:00:00Z') },
  );

  const ms = (label: string, s: Summary) => [label, String(s.n), fmt(s.p50, 2), fmt(s.p99, 2), fmt(s.p999, 2), fmt(s.max, 2)];
  const n = burstSymbols.length;
  console.log(`${symbols.length} symbols; staleness of a bar at the strategy's onBar (ms after its minute closed); floors: the same frames at a plain ws client in a worker thread`);
  console.log(
    table(
      ['path', 'n', 'p50', 'p99', 'p99.9', 'max'],
      [
        ms('REST poll (settle 3 s)', rest.staleness_ms),
        ms('stream: frame -> onBar', stream.frame_to_on_bar_ms),
        ms('floor: frame -> plain ws client', stream.frame_to_floor_client_ms),
        ms(`burst ${n}, ${fmt(burst.frames_per_minute, 0)} frames of <=${PER_FRAME}: frame -> onBar`, burst.frame_to_on_bar_ms),
        ms(`burst ${n}, packed: floor`, burst.frame_to_floor_client_ms),
        ms(`burst ${n}, 1 bar per frame: frame -> onBar (no goal)`, single.frame_to_on_bar_ms),
        ms(`burst ${n}, 1 bar per frame: floor`, single.frame_to_floor_client_ms),
      ],
    ),
  );
  const ratio = rest.staleness_ms.p50 / stream.frame_to_on_bar_ms.p50;
  // Flat: from minute 11 (the heaps have settled; a third of the run in --quick) to the end. The
  // goal is held on RssAnon, the memory the process owns: RssFile grows with the LMDB file's pages
  // that the threads read (the cache holds 5,000 more bars each minute; each thread that opens
  // the store maps the file, and its resident pages count once per mapping). Each end is the
  // median of three minutes, so where a GC falls does not decide it. The total RSS is printed too.
  const rss = burst.rss_mib;
  const from = Math.min(rss.length - 1, quick ? Math.floor(rss.length / 3) : 10);
  const median3 = (xs: number[], at: number) => {
    const w = xs.slice(Math.max(0, at - 1), Math.min(xs.length, at + 2)).sort((a, b) => a - b);
    return w[Math.floor(w.length / 2)];
  };
  const last = rss.length - 1;
  // The end's median is of the last three minutes.
  const endAt = Math.max(from, last - 1);
  const growth = (xs: number[]) => (median3(xs, endAt) - median3(xs, from)) / median3(xs, from);
  const anonGrowth = growth(burst.anon_mib);
  const rssGrowth = growth(rss);
  const first = burst.per_minute[from].memory;
  const end = burst.per_minute[last].memory;
  console.log(
    `burst: ${burst.delivered}/${burst.sent} packed bars delivered over ${rss.length} minutes, ${single.delivered}/${single.sent} one per frame; per packed minute (MiB: RSS = anon + file + shmem; LMDB: its pages resident over all mappings / the file's size):`,
  );
  console.log(perMinuteTable(burst.per_minute));
  console.log(
    `burst memory, minute ${from + 1} -> ${last + 1} (medians of three minutes): anon (the process's own) ${fmt(median3(burst.anon_mib, from), 0)} -> ${fmt(median3(burst.anon_mib, endAt), 0)} MiB (${fmt(anonGrowth * 100, 1)}%); ` +
      `file-backed ${fmt(median3(burst.file_mib, from), 0)} -> ${fmt(median3(burst.file_mib, endAt), 0)} MiB, of which LMDB ${fmt(first.lmdb_resident, 0)} -> ${fmt(end.lmdb_resident, 0)} MiB over ${end.lmdb_mappings} mappings (file ${fmt(first.lmdb_file, 0)} -> ${fmt(end.lmdb_file, 0)} MiB); ` +
      `total RSS ${fmt(median3(rss, from), 0)} -> ${fmt(median3(rss, endAt), 0)} MiB (${fmt(rssGrowth * 100, 1)}%)`,
  );
  const over = (a: StreamFigures, digits: number) =>
    `p50 ${fmt(a.frame_to_on_bar_ms.p50 - a.frame_to_floor_client_ms.p50, digits)} ms, p99 ${fmt(a.frame_to_on_bar_ms.p99 - a.frame_to_floor_client_ms.p99, digits)} ms`;
  console.log(`above the floor: stream ${over(stream, 2)}; burst packed ${over(burst, 1)}; burst one per frame ${over(single, 1)}`);
  const goals = {
    stream_p99_under_20ms: stream.frame_to_on_bar_ms.p99 < 20,
    rest_p50_over_100x_stream_p50: ratio >= 100,
    burst_all_delivered: burst.delivered === burst.sent && single.delivered === single.sent && rest.missing === 0 && stream.delivered === stream.sent,
    burst_p99_under_250ms: burst.frame_to_on_bar_ms.p99 < 250,
    anon_rss_flat_within_10pct: anonGrowth < 0.1,
  };
  console.log(
    `REST p50 / stream p50 = ${fmt(ratio, 0)}x; load average at the end ${loadavg()
      .map((x) => fmt(x, 1))
      .join(' ')}; ${fmt((Date.now() - t0) / 1000, 0)} s`,
  );
  for (const [goal, ok] of Object.entries(goals)) console.log(`${ok ? 'PASS' : 'FAIL'} ${goal}${quick && goal.startsWith('burst_p99') ? ' (quick: 1,000 symbols)' : ''}`);
  return {
    symbols: symbols.length,
    rest_poll: rest,
    stream: { ...stream, rss_mib: undefined },
    burst: { symbols: n, ...burst },
    burst_one_per_frame: { symbols: n, ...single, rss_mib: undefined },
    rest_over_stream_p50: ratio,
    rss_mib: { start: rss[0], settled: median3(rss, from), end: median3(rss, endAt), settled_minute: from + 1 },
    rss_growth_from_settled: rssGrowth,
    anon_mib: { start: burst.anon_mib[0], settled: median3(burst.anon_mib, from), end: median3(burst.anon_mib, endAt) },
    anon_growth_from_settled: anonGrowth,
    file_mib: { settled: median3(burst.file_mib, from), end: median3(burst.file_mib, endAt) },
    lmdb_mib: { resident_settled: first.lmdb_resident, resident_end: end.lmdb_resident, mappings: end.lmdb_mappings, file_settled: first.lmdb_file, file_end: end.lmdb_file },
    load_average: loadavg(),
    goals,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
