/**
 * Backtest benchmark.
 *
 * 1. Replay throughput on one thread: bars per second through the backtest engine, i.e. the live
 *    TradingLoop, sma-crossover, RiskEngine, OrderManager and PaperBroker on the replay clock with
 *    the in-memory journal, over a random walk (two symbols, merged in time order). One untimed
 *    warm-up round over a tenth of the bars, then 7 rounds (3 with --quick); the headline is the
 *    median round, every round is listed.
 * 2. The floor, in the same rounds: a bare loop over the same bars in Float64Arrays computing the
 *    same crossover (running sums), the same target-position orders, and the same fills (next bar's
 *    open, slippage, commission with its minimum), run right after the engine in each round. Its
 *    fills and final cash are checked against the engine's, so the floor does the same work and no
 *    less; the engine-vs-floor figure is the median of the rounds' ratios.
 * 3. A 64-combination sweep (fast 5..40 x slow 50..120) on the piscina pool with 1 worker and with
 *    2, bars read from a real LMDB cache by each worker. Each pool is warmed by one untimed sweep;
 *    then 7 rounds (3 with --quick) alternate 1 and 2 workers. The speed-up is the ratio of the two
 *    medians; the V8 heap in use per worker and the process RSS each worker added are stated.
 *
 *   npm run bench -- backtest [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SmaCrossover } from '../src/actors/trader/strategies/sma-crossover.ts';
import { runEngine } from '../src/backtest/engine.ts';
import { type BacktestPool, createPool } from '../src/backtest/pool.ts';
import type { BacktestSpec } from '../src/backtest/spec.ts';
import { parseGrid, runSweep, type SweepResult } from '../src/backtest/sweep.ts';
import { threadCpu } from '../src/backtest/thread-cpu.ts';
import type { Bar } from '../src/market/bar.ts';
import { openStorage } from '../src/storage/storage.ts';
import { fmt, rssMiB, table } from './stats.ts';

const MIN = 60_000;
const T0 = Date.UTC(2025, 0, 6, 0, 0);
const SLIP = 1;
const CPS = 0.005;
const MINC = 1;
const QTY = 100;

function walk(symbol: string, n: number, seed: number, p0: number): Bar[] {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out: Bar[] = new Array(n);
  let price = p0;
  for (let i = 0; i < n; i++) {
    const open = price;
    price = Math.max(1, Math.round(price * (1 + (rnd() - 0.5) * 0.004) * 100) / 100);
    const close = price;
    out[i] = {
      symbol,
      barSize: '1Min',
      start: T0 + i * MIN,
      open,
      high: Math.max(open, close) + 0.01,
      low: Math.min(open, close) - 0.01,
      close,
      volume: 1000,
      vwap: NaN,
      trades: -1,
      source: 'sim',
      receivedAt: T0 + (i + 1) * MIN,
    };
  }
  return out;
}

/**
 * The floor: the same strategy, orders and fills over Float64Arrays, no objects, no promises. The
 * moving sums are kept in whole cents (the bars' prices have two decimals), so they are exact, and
 * an exact tie of the two averages is flat, as sma-crossover decides it (its floating means compare
 * with a tolerance). The fills are compared one by one.
 */
function bareLoop(series: ReadonlyArray<{ open: Float64Array; close: Float64Array }>, fast: number, slow: number, cash0: number) {
  let cash = cash0;
  const fills: number[] = [];
  const slip = SLIP / 10_000;
  const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
  // Interleaved by time (all symbols share the bar times here): bar i of symbol 0, then of symbol 1.
  const n = series[0].close.length;
  const k = series.length;
  const pos = new Float64Array(k);
  const pending = new Float64Array(k);
  const fsum = new Float64Array(k);
  const ssum = new Float64Array(k);
  const cents = series.map((s) => Int32Array.from(s.close, (c) => Math.round(c * 100)));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const { open } = series[j];
      const close = cents[j];
      if (pending[j] !== 0) {
        const q = pending[j];
        const price = round4(q > 0 ? open[i] * (1 + slip) : open[i] * (1 - slip));
        cash = round4(cash - q * price - round4(Math.max(CPS * Math.abs(q), MINC)));
        pos[j] += q;
        pending[j] = 0;
        fills.push(j, i, q, price);
      }
      const c = close[i];
      fsum[j] += c - (i >= fast ? close[i - fast] : 0);
      ssum[j] += c - (i >= slow ? close[i - slow] : 0);
      if (i + 1 < slow) continue;
      // fast mean > slow mean, in exact integers.
      const target = fsum[j] * slow > ssum[j] * fast ? QTY : 0;
      if (target !== pos[j]) pending[j] = target - pos[j];
    }
  }
  return { cash, fills };
}

function spec(from: number, to: number): BacktestSpec {
  return {
    symbols: ['AAA', 'BBB'],
    bar_size: '1Min',
    from,
    to,
    strategy: 'sma-crossover',
    strategy_module: null,
    params: { qty: QTY },
    cash: 1_000_000,
    slippage_bps: SLIP,
    commission_per_share: CPS,
    min_commission: MINC,
    risk: { maxPositionPerSymbol: 1e6, maxOrderNotional: 1e9, maxGrossExposure: 1e12, maxDailyLoss: 1e12, maxOrdersPerMinute: 100_000, allowedSessions: ['always'] },
    warmup_bars: 0,
    // Random-walk bars round the clock: the 24/7 simulated market, where day orders do not expire.
    calendar: 'none',
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const list = (xs: readonly number[], digits = 0) => xs.map((x) => fmt(x, digits)).join(', ');

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const perSymbol = opts.quick ? 50_000 : 250_000;
  const bars = new Map([
    ['AAA', walk('AAA', perSymbol, 1, 100)],
    ['BBB', walk('BBB', perSymbol, 2, 250)],
  ]);
  const total = perSymbol * 2;
  const arrays = [...bars.values()].map((b) => ({ open: Float64Array.from(b, (x) => x.open), close: Float64Array.from(b, (x) => x.close) }));
  const fast = 10;
  const slow = 30;

  // Rounds of engine then floor, back to back; the median round is the figure (the best would
  // flatter: it is the round the machine happened to leave alone).
  const engineRates: number[] = [];
  const bareRates: number[] = [];
  let engineFills = 0;
  let engineCash = 0;
  let bare: { cash: number; fills: number[] } = { cash: 0, fills: [] };
  let engineFillList: string[] = [];
  const rounds = opts.quick ? 3 : 7;
  // One untimed round over the first tenth of the bars first: the JIT's warm-up is not the figure.
  const warm = new Map([...bars].map(([s, b]) => [s, b.slice(0, perSymbol / 10)]));
  await runEngine({
    strategy: new SmaCrossover({ fast, slow, qty: QTY }),
    symbols: ['AAA', 'BBB'],
    barSize: '1Min',
    bars: warm,
    broker: { startingCash: 1_000_000, slippageBps: SLIP, commissionPerShare: CPS, minCommission: MINC },
    risk: spec(0, 1).risk,
  });
  bareLoop(
    arrays.map((a) => ({ open: a.open.subarray(0, perSymbol / 10), close: a.close.subarray(0, perSymbol / 10) })),
    fast,
    slow,
    1_000_000,
  );
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const out = await runEngine({
      strategy: new SmaCrossover({ fast, slow, qty: QTY }),
      symbols: ['AAA', 'BBB'],
      barSize: '1Min',
      bars,
      broker: { startingCash: 1_000_000, slippageBps: SLIP, commissionPerShare: CPS, minCommission: MINC },
      risk: spec(0, 1).risk,
    });
    engineRates.push(total / ((performance.now() - t0) / 1000));
    engineFills = out.fills.length;
    engineCash = out.finalCash;
    engineFillList = out.fills.map((f) => `${f.symbol} ${f.time} ${f.side === 'buy' ? f.qty : -f.qty} ${f.price}`);
    const t1 = performance.now();
    bare = bareLoop(arrays, fast, slow, 1_000_000);
    bareRates.push(total / ((performance.now() - t1) / 1000));
  }
  const engineMedian = median(engineRates);
  const bareMedian = median(bareRates);
  // Each round's engine and floor ran back to back: their ratio is less at the mercy of the
  // machine's load than the ratio of two figures taken at different moments.
  const pairRatios = engineRates.map((e, i) => bareRates[i] / e);
  const pairMedian = median(pairRatios);
  const names = ['AAA', 'BBB'];
  const bareList: string[] = [];
  for (let x = 0; x < bare.fills.length; x += 4) bareList.push(`${names[bare.fills[x]]} ${T0 + bare.fills[x + 1] * MIN} ${bare.fills[x + 2]} ${bare.fills[x + 3]}`);
  bareList.sort((a, b) => Number(a.split(' ')[1]) - Number(b.split(' ')[1]) || (a < b ? -1 : 1));
  // Fills both made (same symbol, bar, quantity and price), counted as a multiset.
  const pool = new Map<string, number>();
  for (const f of bareList) pool.set(f, (pool.get(f) ?? 0) + 1);
  let agree = 0;
  for (const f of engineFillList) {
    const n = pool.get(f) ?? 0;
    if (n > 0) {
      agree++;
      pool.set(f, n - 1);
    }
  }
  const same = agree === bareList.length && agree === engineFillList.length && Math.abs(engineCash - bare.cash) < 0.005;
  console.log(`${total.toLocaleString()} bars (2 symbols x ${perSymbol.toLocaleString()}), sma-crossover(${fast}, ${slow}), ${rounds} rounds, median round shown`);
  console.log(
    table(
      ['loop', 'bars/s (median)', 'slowest', 'fastest', 'fills', 'final cash'],
      [
        ['engine (live trading code)', fmt(engineMedian, 0), fmt(Math.min(...engineRates), 0), fmt(Math.max(...engineRates), 0), String(engineFills), fmt(engineCash, 2)],
        ['bare Float64Array (floor)', fmt(bareMedian, 0), fmt(Math.min(...bareRates), 0), fmt(Math.max(...bareRates), 0), String(bare.fills.length / 4), fmt(bare.cash, 2)],
      ],
    ),
  );
  console.log(`engine bars/s, round by round: ${list(engineRates)} (goal 1,000,000: median ${engineMedian >= 1e6 ? 'met' : 'missed'})`);
  console.log(`engine vs floor, round by round (back to back): ${pairRatios.map((r) => `${fmt(r, 1)}x`).join(', ')}; median ${fmt(pairMedian, 1)}x (goal within 10x)`);
  console.log(`fills identical to the floor's: ${same ? 'all, and the same final cash' : `${agree} of ${engineFillList.length}`}`);

  // The sweep: bars in LMDB, each worker reads them itself.
  const sweepBars = opts.quick ? 5_000 : 10_000;
  const sweepRounds = opts.quick ? 3 : 7;
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-backtest-'));
  const sweepMs: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const heap: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const rssPerWorker: Record<1 | 2, number> = { 1: 0, 2: 0 };
  // Where the cores went in each sweep (Linux): the workers' threads on a core and waiting for one,
  // the main thread, and the rest of the process (V8's helper threads: garbage collection).
  const cpuRounds: Record<1 | 2, Array<{ workers: number; wait: number; main: number; others: number }>> = { 1: [], 2: [] };
  const lastCpu: Partial<Record<1 | 2, SweepResult['cpu']>> = {};
  try {
    const s = openStorage({ path: dir });
    await s.bars.putMany([...bars.get('AAA')!.slice(0, sweepBars), ...bars.get('BBB')!.slice(0, sweepBars)]);
    await s.close();
    const base = spec(T0, T0 + sweepBars * MIN);
    const axes = [parseGrid('fast=5:40:5'), parseGrid('slow=50:120:10')];
    const source = { dataDir: dir, sourcePrecedence: ['sim'] };
    const sweep = (p: BacktestPool) => runSweep({ pool: p, base, axes, source, sort: 'sharpe' });
    // Each pool is started and warmed by one whole untimed sweep (tsx, module loading, the JIT, the
    // bars read and kept by every worker), the same for 1 and 2 workers: the figure is the sweep.
    // The process RSS before and after says what a worker costs in memory.
    const pools: Partial<Record<1 | 2, BacktestPool>> = {};
    try {
      for (const workers of [1, 2] as const) {
        const before = rssMiB();
        pools[workers] = createPool(workers);
        lastCpu[workers] = (await sweep(pools[workers])).cpu;
        rssPerWorker[workers] = (rssMiB() - before) / workers;
      }
      // Interleaved, 1 worker then 2, round after round: the machine's load changes under a long run.
      for (let r = 0; r < sweepRounds; r++) {
        for (const workers of [1, 2] as const) {
          const main0 = threadCpu();
          const proc0 = process.cpuUsage();
          const t0 = performance.now();
          const result = await sweep(pools[workers]!);
          sweepMs[workers].push(performance.now() - t0);
          const proc = process.cpuUsage(proc0);
          const main1 = threadCpu();
          const before = lastCpu[workers] ?? {};
          let run = 0;
          let wait = 0;
          let known = main0 !== null && main1 !== null;
          for (const [thread, c] of Object.entries(result.cpu)) {
            const b = before[thread];
            if (c === null || b === null || b === undefined) known = false;
            else {
              run += c.run_ms - b.run_ms;
              wait += c.wait_ms - b.wait_ms;
            }
          }
          lastCpu[workers] = { ...before, ...result.cpu };
          if (known) {
            const main = main1!.run_ms - main0!.run_ms;
            cpuRounds[workers].push({ workers: run, wait, main, others: (proc.user + proc.system) / 1000 - main - run });
          }
          if (result.rows.length !== 64 || result.rows.some((x) => !x.ok)) throw new Error('the sweep did not run 64 good combinations');
          heap[workers] = Object.values(result.heap_mib);
        }
      }
    } finally {
      await pools[1]?.close();
      await pools[2]?.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ms1 = median(sweepMs[1]);
  const ms2 = median(sweepMs[2]);
  const speedup = ms1 / ms2;
  const roundSpeedups = sweepMs[1].map((m, i) => m / sweepMs[2][i]);
  console.log(
    `\n64-combination sweep over 2 x ${sweepBars.toLocaleString()} bars from LMDB, ${sweepRounds} rounds each (1 and 2 workers alternating), median shown (${cpus().length} cores on this machine, load average ${loadavg()[0].toFixed(1)})`,
  );
  console.log(
    table(
      ['workers', 'ms (median)', 'rounds ms', 'combinations/s', 'V8 heap per worker MiB', 'process RSS per worker MiB'],
      ([1, 2] as const).map((w) => [
        String(w),
        fmt(w === 1 ? ms1 : ms2, 0),
        list(sweepMs[w]),
        fmt(64 / ((w === 1 ? ms1 : ms2) / 1000), 1),
        heap[w].map((h) => fmt(h, 1)).join(' / '),
        fmt(rssPerWorker[w], 0),
      ]),
    ),
  );
  console.log(`speed-up on 2 workers: ${fmt(speedup, 2)}x, medians (goal 1.8x); round by round: ${roundSpeedups.map((r) => `${fmt(r, 2)}x`).join(', ')}`);
  const cpuMedian = (w: 1 | 2, k: 'workers' | 'wait' | 'main' | 'others') => (cpuRounds[w].length > 0 ? median(cpuRounds[w].map((c) => c[k])) : null);
  const cpuFigures = ([1, 2] as const).map((w) => ({
    workers: w,
    worker_cpu_ms: cpuMedian(w, 'workers'),
    worker_wait_ms: cpuMedian(w, 'wait'),
    main_cpu_ms: cpuMedian(w, 'main'),
    other_threads_cpu_ms: cpuMedian(w, 'others'),
  }));
  if (cpuRounds[1].length > 0 && cpuRounds[2].length > 0) {
    console.log('CPU per sweep, ms (median of the rounds; Linux schedstat): where the cores went');
    console.log(
      table(
        ['workers', 'worker threads on a core', 'worker threads waiting for a core', 'main thread', 'other threads (V8 GC helpers, libuv)'],
        cpuFigures.map((c) => [String(c.workers), fmt(c.worker_cpu_ms!, 0), fmt(c.worker_wait_ms!, 0), fmt(c.main_cpu_ms!, 0), fmt(c.other_threads_cpu_ms!, 0)]),
      ),
    );
  }
  return {
    bars: total,
    rounds,
    engine_bars_per_s: Math.round(engineMedian),
    engine_rounds: engineRates.map(Math.round),
    bare_bars_per_s: Math.round(bareMedian),
    bare_rounds: bareRates.map(Math.round),
    engine_vs_floor: pairMedian,
    engine_vs_floor_rounds: pairRatios,
    same_fills_as_floor: same,
    fills_identical: agree,
    engine_fills: engineFills,
    engine_final_cash: engineCash,
    bare_final_cash: bare.cash,
    sweep_bars_per_symbol: sweepBars,
    sweep_rounds: sweepRounds,
    sweep_ms_1_worker: Math.round(ms1),
    sweep_ms_2_workers: Math.round(ms2),
    sweep_rounds_ms_1_worker: sweepMs[1].map(Math.round),
    sweep_rounds_ms_2_workers: sweepMs[2].map(Math.round),
    sweep_speedup: speedup,
    sweep_speedup_rounds: roundSpeedups,
    heap_mib_per_worker: heap[2],
    heap_mib_1_worker: heap[1],
    rss_mib_per_worker: rssPerWorker[2],
    rss_mib_1_worker: rssPerWorker[1],
    sweep_cpu_ms: cpuFigures,
    load_average: loadavg()[0],
    goals: { engine_1m_bars_per_s: engineMedian >= 1e6, within_10x_floor: pairMedian <= 10, sweep_speedup_1_8: speedup >= 1.8, same_fills_as_floor: same },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await run({ quick: process.argv.includes('--quick') });
}
