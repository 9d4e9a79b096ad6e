/**
 * Trader benchmark: bar in to order decision inside the trading loop.
 *
 * The real TradingLoop, OrderManager, RiskEngine, PaperBroker and sma-crossover strategy (fast 3,
 * slow 8, long/short, so it flips often) over a random walk on several symbols, bars fed one at a
 * time in time order, as the actor would. Two figures per run:
 * - "decision": from TradingLoop.onBar(bar) entry to the broker.submit call, on bars that produce
 *   an order (broker fills due at the open, strategy, sizing, risk, journal put);
 * - "bar": from onBar entry until it resolves, on every bar (most produce no order).
 * Each with the journal (and the paper broker's checkpoints) on real LMDB, whose put resolves once
 * committed and flushed to disk, and with in-memory stores in their place ("journal excluded").
 *
 *   node --import tsx bench/trader.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Broker, BrokerEvent, BrokerFill, BrokerOrder, BrokerPosition } from '../src/actors/trader/broker.ts';
import { OrderManager } from '../src/actors/trader/order-manager.ts';
import { PaperBroker } from '../src/actors/trader/paper-broker.ts';
import { RiskEngine } from '../src/actors/trader/risk.ts';
import { createStrategy } from '../src/actors/trader/strategies/registry.ts';
import { TradingLoop } from '../src/actors/trader/trading-loop.ts';
import type { Bar } from '../src/market/bar.ts';
import { ManualClock } from '../src/market/clock.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { CheckpointStore, OrderJournal, OrderRecord } from '../src/storage/types.ts';
import { fmt, rssMiB, summarize, table, type Summary } from './stats.ts';

const MIN = 60_000;
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
class StampingBroker implements Broker {
  readonly kind = 'paper' as const;
  submittedAt = 0n;
  constructor(private readonly paper: PaperBroker) {}
  submit(order: OrderRecord) {
    this.submittedAt = process.hrtime.bigint();
    return this.paper.submit(order);
  }
  cancel(id: string): Promise<void> {
    return this.paper.cancel(id);
  }
  openOrders(): Promise<BrokerOrder[]> {
    return this.paper.openOrders();
  }
  executions(since?: number): Promise<BrokerFill[]> {
    return this.paper.executions(since);
  }
  onEvent(cb: (e: BrokerEvent) => void): void {
    this.paper.onEvent(cb);
  }
  onBar(bar: Bar): Promise<void> {
    return this.paper.onBar(bar);
  }
  positions(): Promise<Record<string, BrokerPosition>> {
    return this.paper.positions();
  }
  cash(): number {
    return this.paper.cash();
  }
}

/** A seeded random walk, bars round-robin across symbols, one minute apart. */
function makeBars(symbols: string[], perSymbol: number): Bar[] {
  let seed = 42;
  const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const last = symbols.map((_, i) => 50 + i * 10);
  const bars: Bar[] = [];
  for (let k = 0; k < perSymbol; k++) {
    symbols.forEach((symbol, i) => {
      const open = last[i];
      const close = Math.max(1, Math.round((open * (1 + (rand() - 0.5) * 0.01)) * 100) / 100);
      last[i] = close;
      const start = T0 + k * MIN;
      bars.push({ symbol, barSize: '1Min', start, open, high: Math.max(open, close), low: Math.min(open, close), close, volume: 1000, vwap: NaN, trades: -1, source: 'sim', receivedAt: start + MIN });
    });
  }
  return bars;
}

interface Figures {
  decision_us: Summary;
  bar_us: Summary;
  bars: number;
  orders: number;
  bars_per_s: number;
  heap_mib_delta: number;
}

async function measure(stores: 'lmdb' | 'memory', bars: Bar[], warm: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-trader-'));
  const storage = stores === 'lmdb' ? openStorage({ path: dir }) : undefined;
  const journal = storage?.orders ?? new MemoryJournal();
  const checkpoints = storage?.checkpoints ?? new MemoryCheckpoints();
  try {
    const clock = new ManualClock(T0);
    const broker = new StampingBroker(new PaperBroker({ checkpoints, clock, slippageBps: 1, commissionPerShare: 0.005, minCommission: 1 }));
    const risk = new RiskEngine({ maxPositionPerSymbol: 1000, maxOrderNotional: 1e7, maxGrossExposure: 1e9, maxDailyLoss: 1e9, maxOrdersPerMinute: 100_000, allowedSessions: ['always'] });
    const orders = new OrderManager({ journal, broker, risk, clock, log: silent, checkpoints });
    await orders.start();
    const strategy = await createStrategy({ name: 'sma-crossover', params: { fast: 3, slow: 8, qty: 100, allowShort: true } });
    const loop = new TradingLoop({ strategy, risk, orders, clock, log: silent });

    const decision: number[] = [];
    const perBar: number[] = [];
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    let measuredNs = 0n;
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i];
      clock.set(bar.start + MIN);
      broker.submittedAt = 0n;
      const t0 = process.hrtime.bigint();
      await loop.onBar(bar);
      const t1 = process.hrtime.bigint();
      if (i < warm) continue;
      measuredNs += t1 - t0;
      perBar.push(Number(t1 - t0) / 1e3);
      if (broker.submittedAt > t0) decision.push(Number(broker.submittedAt - t0) / 1e3);
    }
    await orders.idle();
    const heapDelta = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
    return {
      decision_us: summarize(decision),
      bar_us: summarize(perBar),
      bars: perBar.length,
      orders: decision.length,
      bars_per_s: perBar.length / (Number(measuredNs) / 1e9),
      heap_mib_delta: heapDelta,
    };
  } finally {
    await storage?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const symbols = opts.quick ? ['AAA', 'BBB'] : ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF', 'GGG', 'HHH'];
  const perSymbol = opts.quick ? 300 : 1500;
  const bars = makeBars(symbols, perSymbol);
  const warm = Math.floor(bars.length / 10);
  // Memory first warms the JIT for both; LMDB second is the one a live trader sees.
  const memory = await measure('memory', bars, warm);
  const lmdb = await measure('lmdb', bars, warm);

  const rows = (label: string, f: Figures) => [
    [`${label} decision`, String(f.decision_us.n), f.decision_us.p50, f.decision_us.p99, f.decision_us.p999, f.decision_us.max, '-'],
    [`${label} bar`, String(f.bar_us.n), f.bar_us.p50, f.bar_us.p99, f.bar_us.p999, f.bar_us.max, fmt(f.bars_per_s, 0)],
  ];
  console.log(`${symbols.length} symbols x ${perSymbol} bars, sma-crossover(3, 8) long/short; latencies in µs`);
  console.log(
    table(['path', 'n', 'p50', 'p99', 'p99.9', 'max', 'bars/s'], [...rows('journal excluded (memory)', memory), ...rows('journal included (LMDB)', lmdb)]),
  );
  console.log(`rss ${fmt(rssMiB())} MiB; heap growth over the run: memory ${fmt(memory.heap_mib_delta)} MiB, LMDB ${fmt(lmdb.heap_mib_delta)} MiB`);
  return {
    symbols: symbols.length,
    bars_per_symbol: perSymbol,
    journal_excluded: memory,
    journal_included: lmdb,
    rss_mib: rssMiB(),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
