/**
 * The bar cache, barkeep's LMDB BarStore against the seed's design (a SQLite table through
 * better-sqlite3: WAL, synchronous=NORMAL, primary key (symbol, bar_size, t), prepared statements,
 * one transaction per batch), doing the same work in one run:
 *
 * 1. insert SYMBOLS x MINUTES bars arriving time-major (one batch of SYMBOLS bars per minute).
 *    SQLite commits each batch synchronously. The BarStore gets each batch with putMany, keeping up
 *    to `window` (32) batches in flight (the collector does not wait for one minute's commit to hand in
 *    the next while backfilling); every write is durable (committed + fsync) when it resolves.
 *    Also: live-style durable latency of one batch at a time.
 * 2. random point reads (BarStore.readInto vs SELECT ... WHERE symbol, bar_size, t);
 * 3. a symbol's latest 500 bars (BarStore.latestNInto into columns, and latestN as Bar objects,
 *    vs SELECT ... ORDER BY t DESC LIMIT 500);
 * 4. the same reads from a second thread while the main thread keeps inserting.
 *
 * Each side runs in its own child process, so peak RSS is per side. Run alone:
 *   node --import tsx bench/storage.ts [--quick]
 *
 * better-sqlite3 is not in barkeep's install (compiling it took most of `npm ci`'s time). Without
 * it the SQLite side is skipped and the LMDB figures are printed alone; to compare, install it
 * beside the lockfile first: `npm install --no-save better-sqlite3 && npm run bench -- storage`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { Bar } from '../src/market/bar.ts';
import { createBarColumns, createBarView } from '../src/storage/bar-codec.ts';
import { openStorage, type Storage } from '../src/storage/storage.ts';

type Side = 'lmdb' | 'sqlite';

/** The part of better-sqlite3's API this benchmark uses (it is an optional, on-demand package). */
interface SqliteStatement {
  run(params: unknown): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface SqliteDb {
  pragma(s: string): unknown;
  exec(s: string): unknown;
  prepare(s: string): SqliteStatement;
  transaction<A extends unknown[]>(fn: (...a: A) => void): (...a: A) => void;
  close(): void;
}
let Database: new (file: string, opts?: { readonly?: boolean }) => SqliteDb;

/** Loads better-sqlite3 when it is installed; false when it is not. */
async function loadSqlite(): Promise<boolean> {
  const name = 'better-sqlite3';
  try {
    Database = ((await import(name)) as { default: typeof Database }).default;
    return true;
  } catch {
    return false;
  }
}

interface Plan {
  symbols: number;
  minutes: number;
  pointReads: number;
  latestReads: number;
  latestN: number;
  window: number;
  liveBatches: number;
}

const FULL: Plan = { symbols: 200, minutes: 5000, pointReads: 200_000, latestReads: 2000, latestN: 500, window: 32, liveBatches: 200 };
const QUICK: Plan = { symbols: 20, minutes: 500, pointReads: 20_000, latestReads: 200, latestN: 500, window: 32, liveBatches: 20 };

const T0 = Date.UTC(2024, 0, 2, 14, 30);
const MINUTE = 60_000;
const MARKER = '@@storage-bench@@';

interface Stats {
  n: number;
  p50: number;
  p99: number;
  p999: number;
  mean: number;
}

/** Latencies in microseconds. */
function summarize(us: Float64Array): Stats {
  const s = Float64Array.from(us).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  let sum = 0;
  for (const x of s) sum += x;
  return { n: s.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), mean: sum / s.length };
}

/** Deterministic pseudo-random stream (both sides read the same keys). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

const symbolName = (i: number) => `S${String(i).padStart(3, '0')}`;

function makeBar(sym: string, minute: number): Bar {
  const base = 100 + (minute % 97) * 0.01;
  return {
    symbol: sym,
    barSize: '1Min',
    start: T0 + minute * MINUTE,
    open: base,
    high: base + 0.05,
    low: base - 0.05,
    close: base + 0.01,
    volume: 1000 + minute,
    vwap: base,
    trades: 12,
    source: 'massive',
    receivedAt: T0 + minute * MINUTE + 61_000,
  };
}

function minuteBatch(plan: Plan, minute: number): Bar[] {
  const out: Bar[] = new Array(plan.symbols);
  for (let s = 0; s < plan.symbols; s++) out[s] = makeBar(symbolName(s), minute);
  return out;
}

// ---- the two designs ----------------------------------------------------------------------------

interface Subject {
  /** Inserts minutes [from, to) time-major; returns per-batch latencies (µs) of the calling thread's view. */
  insert(plan: Plan, from: number, to: number, stop?: Int32Array): Promise<Float64Array>;
  /** One batch at a time, each durable before the next. */
  insertLive(plan: Plan, from: number, count: number): Promise<Float64Array>;
  close(): Promise<void>;
}

interface Reader {
  point(sym: string, start: number): number;
  latest(sym: string, n: number): number;
  latestObjects?(sym: string, n: number): number;
  close(): void;
}

function sqlitePath(dir: string) {
  return path.join(dir, 'bars.sqlite');
}

function openSqliteWriter(dir: string): Subject {
  const db = new Database(sqlitePath(dir));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, bar_size TEXT NOT NULL, t INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    vwap REAL, trades INTEGER, source TEXT NOT NULL, received_at INTEGER NOT NULL,
    PRIMARY KEY (symbol, bar_size, t))`);
  const upsert = db.prepare(
    `INSERT INTO bars VALUES (@symbol, @barSize, @start, @open, @high, @low, @close, @volume, @vwap, @trades, @source, @receivedAt)
     ON CONFLICT (symbol, bar_size, t) DO UPDATE SET open = excluded.open, high = excluded.high, low = excluded.low,
       close = excluded.close, volume = excluded.volume, vwap = excluded.vwap, trades = excluded.trades,
       source = excluded.source, received_at = excluded.received_at`,
  );
  const insertMany = db.transaction((bars: Bar[]) => {
    for (const b of bars) upsert.run({ ...b, vwap: Number.isNaN(b.vwap) ? null : b.vwap, trades: b.trades < 0 ? null : b.trades });
  });
  const insert = async (plan: Plan, from: number, to: number, stop?: Int32Array) => {
    const lat = new Float64Array(to - from);
    let i = 0;
    for (let m = from; m < to; m++) {
      if (stop && Atomics.load(stop, 0) === 1) break;
      const batch = minuteBatch(plan, m);
      const t = performance.now();
      insertMany(batch);
      lat[i++] = (performance.now() - t) * 1000;
    }
    return lat.subarray(0, i);
  };
  return {
    insert,
    insertLive: (plan, from, count) => insert(plan, from, from + count),
    async close() {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
}

function openSqliteReader(dir: string): Reader {
  const db = new Database(sqlitePath(dir), { readonly: true });
  const point = db.prepare('SELECT * FROM bars WHERE symbol = ? AND bar_size = ? AND t = ?');
  const latest = db.prepare('SELECT * FROM bars WHERE symbol = ? AND bar_size = ? ORDER BY t DESC LIMIT ?');
  return {
    point(sym, start) {
      const row = point.get(sym, '1Min', start) as { close: number } | undefined;
      return row ? row.close : -1;
    },
    latest(sym, n) {
      const rows = latest.all(sym, '1Min', n) as { close: number }[];
      rows.reverse();
      return rows.length;
    },
    close: () => db.close(),
  };
}

function lmdbPath(dir: string) {
  return path.join(dir, 'lmdb');
}

function openLmdbWriter(dir: string): Subject {
  const storage = openStorage({ path: lmdbPath(dir), retentionDays: { '1Min': Infinity } });
  const insert = async (plan: Plan, from: number, to: number, stop?: Int32Array) => {
    const lat = new Float64Array(to - from);
    const inFlight: Promise<unknown>[] = [];
    let i = 0;
    for (let m = from; m < to; m++) {
      if (stop && Atomics.load(stop, 0) === 1) break;
      if (inFlight.length >= plan.window) await inFlight.shift();
      const batch = minuteBatch(plan, m);
      const t = performance.now();
      const k = i++;
      inFlight.push(storage.bars.putMany(batch).then(() => (lat[k] = (performance.now() - t) * 1000)));
    }
    await Promise.all(inFlight);
    return lat.subarray(0, i);
  };
  return {
    insert,
    async insertLive(plan, from, count) {
      const lat = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const batch = minuteBatch(plan, from + i);
        const t = performance.now();
        await storage.bars.putMany(batch);
        lat[i] = (performance.now() - t) * 1000;
      }
      return lat;
    },
    close: () => storage.close(),
  };
}

function openLmdbReader(dir: string): Reader & { storage: Storage } {
  const storage = openStorage({ path: lmdbPath(dir), retentionDays: { '1Min': Infinity } });
  const view = createBarView();
  const cols = createBarColumns(500);
  return {
    storage,
    point(sym, start) {
      return storage.bars.readInto(sym, '1Min', start, view) ? view.close : -1;
    },
    latest(sym, n) {
      return storage.bars.latestNInto(sym, '1Min', n, cols);
    },
    latestObjects(sym, n) {
      return storage.bars.latestN(sym, '1Min', n).length;
    },
    close: () => void storage.close(),
  };
}

// ---- read workloads (same on both sides, main thread or worker) --------------------------------

interface ReadResults {
  point: Stats;
  latest: Stats;
  latestObjects?: Stats;
  misses: number;
}

function runReads(reader: Reader, plan: Plan, seed: number, pointReads: number, latestReads: number): ReadResults {
  const rnd = lcg(seed);
  const syms = Array.from({ length: plan.symbols }, (_, i) => symbolName(i));
  const starts = new Float64Array(pointReads);
  const symIdx = new Int32Array(pointReads);
  for (let i = 0; i < pointReads; i++) {
    symIdx[i] = Math.floor(rnd() * plan.symbols);
    starts[i] = T0 + Math.floor(rnd() * plan.minutes) * MINUTE;
  }
  // warm-up (JIT, page cache), not measured
  for (let i = 0; i < Math.min(5000, pointReads); i++) reader.point(syms[symIdx[i]], starts[i]);
  let misses = 0;
  const pointLat = new Float64Array(pointReads);
  for (let i = 0; i < pointReads; i++) {
    const t = performance.now();
    const close = reader.point(syms[symIdx[i]], starts[i]);
    pointLat[i] = (performance.now() - t) * 1000;
    if (close < 0) misses++;
  }
  const latest = (fn: (sym: string, n: number) => number) => {
    for (let i = 0; i < Math.min(50, latestReads); i++) fn(syms[i % plan.symbols], plan.latestN);
    const lat = new Float64Array(latestReads);
    for (let i = 0; i < latestReads; i++) {
      const sym = syms[Math.floor(rnd() * plan.symbols)];
      const t = performance.now();
      const got = fn(sym, plan.latestN);
      lat[i] = (performance.now() - t) * 1000;
      if (got !== Math.min(plan.latestN, plan.minutes)) misses++;
    }
    return summarize(lat);
  };
  const out: ReadResults = { point: summarize(pointLat), latest: latest(reader.latest), misses };
  if (reader.latestObjects) out.latestObjects = latest(reader.latestObjects);
  return out;
}

// ---- one side, in a child process ---------------------------------------------------------------

interface SideResult {
  side: Side;
  insert: { totalMs: number; barsPerSec: number; batch: Stats };
  live: Stats;
  reads: ReadResults;
  concurrent: { reads: ReadResults; barsWrittenMeanwhile: number; writeBatch: Stats };
  peakRssMb: number;
  diskMb: number;
  diskAllocatedMb: number;
}

function du(dir: string): { size: number; allocated: number } {
  let size = 0;
  let allocated = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const st = fs.statSync(path.join(e.parentPath, e.name));
    size += st.size;
    allocated += st.blocks * 512;
  }
  return { size, allocated };
}

async function runSide(side: Side, plan: Plan, dir: string): Promise<SideResult> {
  if (side === 'sqlite' && !(await loadSqlite())) throw new Error('better-sqlite3 is not installed');
  const writer = side === 'lmdb' ? openLmdbWriter(dir) : openSqliteWriter(dir);
  const t = performance.now();
  const batchLat = await writer.insert(plan, 0, plan.minutes);
  const totalMs = performance.now() - t;
  const bars = plan.symbols * plan.minutes;

  const reader = side === 'lmdb' ? openLmdbReader(dir) : openSqliteReader(dir);
  const reads = runReads(reader, plan, 42, plan.pointReads, plan.latestReads);

  // Second thread reads while this one writes new minutes (after the ones read).
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const worker = tsWorker(import.meta.url, { role: 'storage-bench-reader', side, dir, plan, stop: stop.buffer });
  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const done = new Promise<ReadResults>((resolve, reject) => {
    worker.on('message', (m: { results?: ReadResults }) => m.results && resolve(m.results));
    worker.once('error', reject);
  });
  await ready;
  const extra = plan.minutes * 4; // an upper bound: writing stops when the reader is done
  const writeLat = await writer.insert(plan, plan.minutes + plan.liveBatches, plan.minutes + plan.liveBatches + extra, stop);
  const concurrentReads = await done;
  await worker.terminate();

  const live = summarize(await writer.insertLive(plan, plan.minutes, plan.liveBatches));
  reader.close();
  await writer.close();
  const disk = du(dir);
  return {
    side,
    insert: { totalMs, barsPerSec: (bars / totalMs) * 1000, batch: summarize(batchLat) },
    live,
    reads,
    concurrent: { reads: concurrentReads, barsWrittenMeanwhile: writeLat.length * plan.symbols, writeBatch: summarize(writeLat) },
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    diskMb: disk.size / 2 ** 20,
    diskAllocatedMb: disk.allocated / 2 ** 20,
  };
}

async function readerThread(): Promise<void> {
  const { side, dir, plan, stop } = workerData as { side: Side; dir: string; plan: Plan; stop: SharedArrayBuffer };
  const flag = new Int32Array(stop);
  if (side === 'sqlite') await loadSqlite();
  const reader = side === 'lmdb' ? openLmdbReader(dir) : openSqliteReader(dir);
  parentPort!.postMessage({ ready: true });
  // Give the writer a moment to start, then read under its load.
  await new Promise((r) => setTimeout(r, 20));
  const results = runReads(reader, plan, 7, plan.pointReads, plan.latestReads);
  Atomics.store(flag, 0, 1);
  reader.close();
  parentPort!.postMessage({ results });
}

/** A worker running this TypeScript file: workers do not inherit tsx's loader, so register it first. */
function tsWorker(url: string, data: unknown): Worker {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const src = `(async () => { (await import(${JSON.stringify(tsxApi)})).register(); await import(${JSON.stringify(url)}); })()`;
  return new Worker(src, { eval: true, workerData: data });
}

function runChild(side: Side, plan: Plan): Promise<SideResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `barkeep-bench-${side}-`));
  // Not process.execArgv: under `node -e`, that holds the evaluated script, which would run again.
  const execArgv = ['--import', 'tsx'];
  const child = spawn(process.execPath, [...execArgv, fileURLToPath(import.meta.url), '--side', side, '--dir', dir, '--plan', JSON.stringify(plan)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise<SideResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      fs.rmSync(dir, { recursive: true, force: true });
      const line = out.split('\n').find((l) => l.startsWith(MARKER));
      if (code !== 0 || !line) reject(new Error(`bench child (${side}) exited ${code}: ${out.slice(-2000)}`));
      else resolve(JSON.parse(line.slice(MARKER.length)) as SideResult);
    });
  });
}

// ---- report -------------------------------------------------------------------------------------

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function report(plan: Plan, s: SideResult, l: SideResult): Record<string, unknown> {
  const rows: [string, Stats, Stats][] = [
    ['insert batch (µs/batch)', s.insert.batch, l.insert.batch],
    ['live batch, durable (µs)', s.live, l.live],
    ['point read (µs)', s.reads.point, l.reads.point],
    [`latest ${plan.latestN} (µs)`, s.reads.latest, l.reads.latest],
    [`latest ${plan.latestN}, 2nd thread (µs)`, s.concurrent.reads.latest, l.concurrent.reads.latest],
    ['point read, 2nd thread (µs)', s.concurrent.reads.point, l.concurrent.reads.point],
    ['write batch beside reader (µs)', s.concurrent.writeBatch, l.concurrent.writeBatch],
  ];
  const lines: string[] = [];
  lines.push(`bar cache: ${plan.symbols} symbols x ${plan.minutes} minutes = ${plan.symbols * plan.minutes} bars, node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'})`);
  lines.push('operation                          | sqlite p50 |  sqlite p99 |   lmdb p50 |    lmdb p99 |  lmdb p99.9 | p50 ratio');
  lines.push('-----------------------------------|------------|-------------|------------|-------------|-------------|----------');
  for (const [name, a, b] of rows) {
    lines.push(
      `${name.padEnd(35)}| ${fmt(a.p50).padStart(10)} | ${fmt(a.p99).padStart(11)} | ${fmt(b.p50).padStart(10)} | ${fmt(b.p99).padStart(11)} | ${fmt(b.p999).padStart(11)} | ${fmt(a.p50 / b.p50, 2).padStart(8)}x`,
    );
  }
  if (l.reads.latestObjects) {
    lines.push(
      `latest ${plan.latestN} as Bar objects (lmdb latestN): p50 ${fmt(l.reads.latestObjects.p50)} µs, p99 ${fmt(l.reads.latestObjects.p99)} µs (${fmt(s.reads.latest.p50 / l.reads.latestObjects.p50, 2)}x sqlite)`,
    );
  }
  lines.push(
    `(insert batch: sqlite = one synchronous transaction, not fsynced (WAL, synchronous=NORMAL); lmdb = putMany call until durable (committed + fsync), up to ${plan.window} in flight, so it includes queueing)`,
  );
  const insertRatio = l.insert.barsPerSec / s.insert.barsPerSec;
  lines.push(
    `insert total: sqlite ${fmt(s.insert.totalMs, 0)} ms (${fmt(s.insert.barsPerSec, 0)} bars/s), lmdb ${fmt(l.insert.totalMs, 0)} ms (${fmt(l.insert.barsPerSec, 0)} bars/s): ${fmt(insertRatio, 2)}x`,
  );
  lines.push(`bars written beside the 2nd-thread reader: sqlite ${s.concurrent.barsWrittenMeanwhile}, lmdb ${l.concurrent.barsWrittenMeanwhile}`);
  lines.push(
    `peak RSS: sqlite ${fmt(s.peakRssMb)} MB, lmdb ${fmt(l.peakRssMb)} MB; on disk: sqlite ${fmt(s.diskMb)} MB (${fmt(s.diskAllocatedMb)} allocated), lmdb ${fmt(l.diskMb)} MB (${fmt(l.diskAllocatedMb)} allocated)`,
  );
  const goals = {
    pointReadRatio: s.reads.point.p50 / l.reads.point.p50,
    pointReadP99Us: l.reads.point.p99,
    latestRatio: s.reads.latest.p50 / l.reads.latest.p50,
    insertRatio,
  };
  lines.push(
    `goals${plan.minutes < FULL.minutes ? ' (judged on the full run only)' : ''}: point reads ${fmt(goals.pointReadRatio, 2)}x (>= 3) with p99 ${fmt(goals.pointReadP99Us, 2)} µs (< 5); latest-${plan.latestN} ${fmt(goals.latestRatio, 2)}x (>= 3); inserts ${fmt(goals.insertRatio, 2)}x (>= 2)`,
  );
  lines.push(`misses (must be 0): sqlite ${s.reads.misses + s.concurrent.reads.misses}, lmdb ${l.reads.misses + l.concurrent.reads.misses}`);
  console.log(lines.join('\n'));
  return { plan, sqlite: s, lmdb: l, goals };
}

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const plan = opts.quick ? QUICK : FULL;
  if (!(await loadSqlite())) {
    console.log('better-sqlite3 is not installed (not part of the default install): the SQLite comparison is skipped.');
    console.log('To compare: npm install --no-save better-sqlite3 && npm run bench -- storage');
    return reportLmdbOnly(plan, await runChild('lmdb', plan));
  }
  const sqlite = await runChild('sqlite', plan);
  const lmdb = await runChild('lmdb', plan);
  return report(plan, sqlite, lmdb);
}

function reportLmdbOnly(plan: Plan, l: SideResult): Record<string, unknown> {
  const rows: [string, Stats][] = [
    ['insert batch (µs/batch)', l.insert.batch],
    ['live batch, durable (µs)', l.live],
    ['point read (µs)', l.reads.point],
    [`latest ${plan.latestN} (µs)`, l.reads.latest],
    [`latest ${plan.latestN}, 2nd thread (µs)`, l.concurrent.reads.latest],
    ['point read, 2nd thread (µs)', l.concurrent.reads.point],
    ['write batch beside reader (µs)', l.concurrent.writeBatch],
  ];
  const lines = [`bar cache (lmdb only): ${plan.symbols} symbols x ${plan.minutes} minutes, node ${process.version}`];
  lines.push('operation                          |   lmdb p50 |    lmdb p99 |  lmdb p99.9');
  for (const [name, b] of rows) lines.push(`${name.padEnd(35)}| ${fmt(b.p50).padStart(10)} | ${fmt(b.p99).padStart(11)} | ${fmt(b.p999).padStart(11)}`);
  lines.push(
    `insert total: ${fmt(l.insert.totalMs, 0)} ms (${fmt(l.insert.barsPerSec, 0)} bars/s); peak RSS ${fmt(l.peakRssMb)} MB; misses (must be 0): ${l.reads.misses + l.concurrent.reads.misses}`,
  );
  console.log(lines.join('\n'));
  return { plan, sqlite: null, sqlite_skipped: 'better-sqlite3 not installed', lmdb: l };
}

// ---- entry points ---------------------------------------------------------------------------------

if (!isMainThread && (workerData as { role?: string } | null)?.role === 'storage-bench-reader') {
  void readerThread();
} else if (isMainThread && import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const sideAt = args.indexOf('--side');
  if (sideAt >= 0) {
    const side = args[sideAt + 1] as Side;
    const dir = args[args.indexOf('--dir') + 1];
    const plan = JSON.parse(args[args.indexOf('--plan') + 1]) as Plan;
    const result = await runSide(side, plan, dir);
    process.stdout.write(`${MARKER}${JSON.stringify(result)}\n`);
  } else {
    await run({ quick: args.includes('--quick') });
  }
}
