/**
 * Trader benchmark: bar to order handed to the broker, held against the disk's own floor.
 *
 * The real TradingLoop, OrderManager, RiskEngine, PaperBroker and sma-crossover strategy (fast 3,
 * slow 8, long/short, so it flips often) over a random walk on several symbols. The bars are in
 * the LMDB bar cache; each step takes one bar's key as the arbiter would hand it on, reads the bar
 * from the cache and runs it through the loop, yielding to the event loop between bars as the
 * actor does between messages. Meanwhile a worker thread (bench/fixtures/bar-writer.mjs) plays the
 * collector, committing batches of bars into the same LMDB environment back to back.
 *
 * Figures per run:
 * - "bar to order": from taking the key to the broker.submit call, on bars that produce an order
 *   (cache read, broker fills due at the open, strategy, sizing, risk, durable journal write);
 * - "bar": the same span on every bar (most produce no order);
 * - "fsync floor": right after each order, one append + fdatasync of a journal-sized record
 *   (a pending order's JSON frame) to a file in the same directory, under the same load: what
 *   any durable write before the send costs at least. Interleaved with the orders, so the
 *   machine's noise hits both alike.
 * Journals compared: in memory (the path without the disk), the journal file (order-log.ts, what
 * barkeep uses), and the journal as an LMDB database in the bar cache's environment (what it was
 * before: its flush waits behind the collector's batches). The paper broker keeps its own state
 * in memory here: it stands for the broker, which is not part of the path being measured.
 *
 *   node --import tsx bench/trader.ts [--quick]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { open, type RootDatabase } from 'lmdb';
import { OrderManager } from '../src/actors/trader/order-manager.ts';
import { PaperBroker } from '../src/actors/trader/paper-broker.ts';
import { RiskEngine } from '../src/actors/trader/risk.ts';
import { createStrategy } from '../src/actors/trader/strategies/registry.ts';
import { TradingLoop } from '../src/actors/trader/trading-loop.ts';
import type { Bar } from '../src/market/bar.ts';
import { ManualClock } from '../src/market/clock.ts';
import { LmdbOrderJournal } from '../src/storage/order-journal.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { CheckpointStore, OrderJournal, OrderRecord } from '../src/storage/types.ts';
import { fmt, rssMiB, summarize, table, type Summary } from './stats.ts';
import { PaperStandIn } from '../test/helpers/paper-stand-in.ts';

const MIN = 60_000;
/** Pause between two of the collector's batches: a busy collector, not a CPU hog. */
const COLLECTOR_PAUSE_MS = 5;
const T0 = Date.UTC(2025, 5, 2, 13, 30);
const silent = { info() {}, warn() {}, error() {} };

/** Journal kept in a Map: the "journal excluded" figure. */
class MemoryJournal implements OrderJournal {
  private readonly records = new Map<string, OrderRecord>();
  async put(record: OrderRecord): Promise<void> {
    this.records.set(record.clientOrderId, record);
  }
  get(id: string): OrderRecord | undefined {
    return this.records.get(id);
  }
  all(): OrderRecord[] {
    return [...this.records.values()].sort((a, b) => a.createdAt - b.createdAt);
  }
  open(): OrderRecord[] {
    return this.all().filter((r) => r.state === 'pending' || r.state === 'submitted' || r.state === 'partially_filled');
  }
}

class MemoryCheckpoints implements CheckpointStore {
  private readonly values = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  async put<T>(key: string, value: T): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}

/** The paper broker, noting when submit is called: the end of the decision. */
class StampingBroker extends PaperStandIn {
  submittedAt = 0n;
  override submit(order: OrderRecord) {
    this.submittedAt = process.hrtime.bigint();
    return this.paper.submit(order);
  }
}

/** A seeded random walk, bars round-robin across symbols, one minute apart. */
function makeBars(symbols: string[], perSymbol: number): Bar[] {
  let seed = 42;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const last = symbols.map((_, i) => 50 + i * 10);
  const bars: Bar[] = [];
  for (let k = 0; k < perSymbol; k++) {
    symbols.forEach((symbol, i) => {
      const open = last[i];
      const close = Math.max(1, Math.round(open * (1 + (rand() - 0.5) * 0.01) * 100) / 100);
      last[i] = close;
      const start = T0 + k * MIN;
      bars.push({ symbol, barSize: '1Min', start, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1000, vwap: NaN, trades: -1, source: 'sim', receivedAt: start + MIN });
    });
  }
  return bars;
}

interface Figures {
  journal: Journal;
  bar_to_order_us: Summary;
  bar_us: Summary;
  fsync_floor_us: Summary;
  bars: number;
  orders: number;
  bars_per_s: number;
  heap_mib_delta: number;
  collector: { batches: number; bars: number };
}

type Journal = 'memory' | 'file' | 'lmdb';

/** One append + fdatasync of `frame` to the floor file: the least a durable write can cost. */
function floorSample(fd: number, frame: Buffer): number {
  const t0 = process.hrtime.bigint();
  writeSync(fd, frame);
  fdatasyncSync(fd);
  return Number(process.hrtime.bigint() - t0) / 1e3;
}

/** A pending order's record as the journal frames it (8-byte header + JSON). */
function journalFrame(): Buffer {
  const json = JSON.stringify({
    clientOrderId: 'bk-sma-crossover-AAA-mk1adb1c-0',
    strategy: 'sma-crossover',
    symbol: 'AAA',
    side: 'buy',
    qty: 200,
    type: 'market',
    broker: 'paper',
    state: 'pending',
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: T0,
    reason: 'sma(3) crossed above sma(8)',
    createdAt: T0 + MIN,
    updatedAt: T0 + MIN,
  });
  const frame = Buffer.alloc(8 + Buffer.byteLength(json));
  frame.write(json, 8);
  return frame;
}

async function startCollector(dir: string, symbols: number): Promise<{ stop(): Promise<{ batches: number; bars: number }> }> {
  const worker = new Worker(new URL('./fixtures/bar-writer.mjs', import.meta.url), { workerData: { path: dir, symbols, pauseMs: COLLECTOR_PAUSE_MS } });
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', () => resolve());
  });
  return {
    async stop() {
      const done = new Promise<{ batches: number; bars: number }>((resolve) => worker.on('message', (m) => m.type === 'done' && resolve(m)));
      worker.postMessage('stop');
      const counts = await done;
      await worker.terminate();
      return counts;
    },
  };
}

async function measure(journalKind: Journal, bars: Bar[], warm: number, collectorSymbols: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-trader-'));
  const storage = openStorage({ path: dir });
  const floorFd = openSync(join(dir, 'floor.bin'), 'a');
  const frame = journalFrame();
  let lmdbEnv: RootDatabase | undefined;
  let journal: OrderJournal;
  if (journalKind === 'memory') journal = new MemoryJournal();
  else if (journalKind === 'file') journal = storage.orders;
  else {
    lmdbEnv = open({ path: dir, maxDbs: 16 });
    journal = new LmdbOrderJournal(lmdbEnv);
  }
  await storage.bars.putMany(bars);
  const collector = await startCollector(dir, collectorSymbols);
  try {
    const clock = new ManualClock(T0);
    const broker = new StampingBroker(new PaperBroker({ checkpoints: new MemoryCheckpoints(), clock, slippageBps: 1, commissionPerShare: 0.005, minCommission: 1 }));
    const risk = new RiskEngine({ maxPositionPerSymbol: 1000, maxOrderNotional: 1e7, maxGrossExposure: 1e9, maxDailyLoss: 1e9, maxOrdersPerMinute: 100_000, allowedSessions: ['always'] });
    const orders = new OrderManager({ journal, broker, risk, clock, log: silent, checkpoints: new MemoryCheckpoints() });
    await orders.start();
    const strategy = await createStrategy({ name: 'sma-crossover', params: { fast: 3, slow: 8, qty: 100, allowShort: true } });
    const loop = new TradingLoop({ strategy, risk, orders, clock, log: silent });

    const decision: number[] = [];
    const perBar: number[] = [];
    const floor: number[] = [];
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let measuredNs = 0n;
    for (let i = 0; i < bars.length; i++) {
      const key = bars[i];
      clock.set(key.start + MIN);
      broker.submittedAt = 0n;
      // Between two bars the actor's event loop runs (messages, timers): so it does here, untimed.
      await new Promise((r) => setImmediate(r));
      const t0 = process.hrtime.bigint();
      const bar = storage.bars.get(key.symbol, '1Min', key.start);
      if (!bar) throw new Error(`bar ${key.symbol} ${key.start} is not in the cache`);
      await loop.onBar(bar);
      const t1 = process.hrtime.bigint();
      if (i < warm) continue;
      measuredNs += t1 - t0;
      perBar.push(Number(t1 - t0) / 1e3);
      if (broker.submittedAt > t0) {
        decision.push(Number(broker.submittedAt - t0) / 1e3);
        floor.push(floorSample(floorFd, frame));
      }
    }
    await orders.idle();
    const heapDelta = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    const load = await collector.stop();
    return {
      journal: journalKind,
      bar_to_order_us: summarize(decision),
      bar_us: summarize(perBar),
      fsync_floor_us: summarize(floor),
      bars: perBar.length,
      orders: decision.length,
      bars_per_s: perBar.length / (Number(measuredNs) / 1e9),
      heap_mib_delta: heapDelta,
      collector: load,
    };
  } finally {
    closeSync(floorFd);
    await lmdbEnv?.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(opts: { quick?: boolean; runs?: number } = {}): Promise<Record<string, unknown>> {
  const symbols = opts.quick ? ['AAA', 'BBB'] : ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF', 'GGG', 'HHH'];
  const perSymbol = opts.quick ? 300 : 1500;
  const runs = opts.runs ?? (opts.quick ? 1 : 3);
  const collectorSymbols = 500;
  const bars = makeBars(symbols, perSymbol);
  const warm = Math.floor(bars.length / 10);
  const kinds: Journal[] = ['memory', 'file', 'lmdb'];
  const all: Figures[] = [];
  // Memory first warms the JIT for all; then the kinds alternate run by run.
  await measure('memory', bars.slice(0, 2000), 200, collectorSymbols);
  for (let r = 0; r < runs; r++) for (const kind of kinds) all.push(await measure(kind, bars, warm, collectorSymbols));

  console.log(
    `${symbols.length} symbols x ${perSymbol} bars, sma-crossover(3, 8) long/short; collector committing ${collectorSymbols}-bar batches into the same LMDB environment throughout; ${runs} run(s) of each; latencies in µs`,
  );
  const rows: Array<Array<string | number>> = [];
  all.forEach((f, i) => {
    const run = Math.floor(i / kinds.length) + 1;
    const ratio = (q: 'p99' | 'p999') => (f.journal === 'memory' ? '-' : fmt(f.bar_to_order_us[q] / f.fsync_floor_us[q], 2));
    rows.push([
      String(run),
      `${f.journal} bar to order`,
      f.bar_to_order_us.n,
      f.bar_to_order_us.p50,
      f.bar_to_order_us.p99,
      f.bar_to_order_us.p999,
      f.bar_to_order_us.max,
      ratio('p99'),
      ratio('p999'),
    ]);
    rows.push([String(run), `${f.journal} fsync floor`, f.fsync_floor_us.n, f.fsync_floor_us.p50, f.fsync_floor_us.p99, f.fsync_floor_us.p999, f.fsync_floor_us.max, '', '']);
    rows.push([String(run), `${f.journal} bar (all)`, f.bar_us.n, f.bar_us.p50, f.bar_us.p99, f.bar_us.p999, f.bar_us.max, '', '']);
  });
  console.log(table(['run', 'path', 'n', 'p50', 'p99', 'p99.9', 'max', 'p99/floor', 'p99.9/floor'], rows));
  const fileRuns = all.filter((f) => f.journal === 'file');
  const ratios = {
    p99: fileRuns.map((f) => f.bar_to_order_us.p99 / f.fsync_floor_us.p99),
    p999: fileRuns.map((f) => f.bar_to_order_us.p999 / f.fsync_floor_us.p999),
  };
  // The run whose p99 ratio is the median stands for the set (its figures all come from one run).
  const order = fileRuns.map((_, i) => i).sort((a, b) => ratios.p99[a] - ratios.p99[b]);
  const rep = fileRuns[order[Math.floor(order.length / 2)]];
  const pick = (s: Summary) => ({ p50: s.p50, p99: s.p99, p999: s.p999, n: s.n });
  console.log(
    `journal file, median run: bar to order p99 ${fmt(rep.bar_to_order_us.p99)} µs = ${fmt(rep.bar_to_order_us.p99 / rep.fsync_floor_us.p99, 2)}x floor ` +
      `(goal 1.5x), p99.9 ${fmt(rep.bar_to_order_us.p999)} µs = ${fmt(rep.bar_to_order_us.p999 / rep.fsync_floor_us.p999, 2)}x floor (goal 2x); ` +
      `p99 ratio over runs: ${ratios.p99.map((x) => fmt(x, 2)).join(', ')}; p99.9: ${ratios.p999.map((x) => fmt(x, 2)).join(', ')}`,
  );
  console.log(`rss ${fmt(rssMiB())} MiB`);
  return {
    symbols: symbols.length,
    bars_per_symbol: perSymbol,
    runs,
    collector_batch_bars: collectorSymbols,
    bar_to_order_us: pick(rep.bar_to_order_us),
    fsync_floor_us: pick(rep.fsync_floor_us),
    ratio_p99: rep.bar_to_order_us.p99 / rep.fsync_floor_us.p99,
    ratio_p999: rep.bar_to_order_us.p999 / rep.fsync_floor_us.p999,
    ratio_p99_runs: ratios.p99,
    ratio_p999_runs: ratios.p999,
    ratio_p99_median: median(ratios.p99),
    ratio_p999_median: median(ratios.p999),
    runs_detail: all,
    rss_mib: rssMiB(),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
