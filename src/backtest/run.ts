/**
 * One backtest from its spec: the strategy built as live builds it (createStrategy), the bars read
 * from the cache, the engine run, the report made. Used in-process by the CLI and inside the pool's
 * workers (task.ts) for sweeps and HTTP.
 */
import { exitsFromSnake, exitsToSnake } from '../actors/trader/order-types.ts';
import { createStrategy } from '../actors/trader/strategies/registry.ts';
import type { BarReader } from '../storage/types.ts';
import { loadBars, type LoadedBars } from './bars.ts';
import { BacktestError, type DecisionRow, runEngine } from './engine.ts';
import { type BacktestDetail, type BacktestReport, buildReport } from './report.ts';
import type { BacktestSpec } from './spec.ts';

export interface RunOptions {
  /** Bars already read for this spec's symbols and span (a sweep reuses them). */
  bars?: LoadedBars;
  onProgress?: (done: number, total: number) => void;
  onDecision?: (row: DecisionRow) => void;
  /** false: the report's equity curve is left empty (see ReportContext.curve). */
  curve?: boolean;
}

export async function runSpec(spec: BacktestSpec, reader: BarReader, opts: RunOptions = {}): Promise<{ report: BacktestReport; detail: BacktestDetail }> {
  const strategy = await createStrategy({
    name: spec.strategy,
    params: spec.params,
    ...(spec.strategy_module ? { module: spec.strategy_module } : {}),
  });
  const loaded = opts.bars ?? loadBars(reader, spec.symbols, spec.bar_size, spec.from, spec.to, spec.warmup_bars);
  let n = 0;
  for (const b of loaded.bars.values()) n += b.length;
  if (n === 0) {
    throw new BacktestError('BACKTEST_NO_BARS', `the cache has no ${spec.bar_size} bars of ${spec.symbols.join(', ')} from ${new Date(spec.from).toISOString()} to ${new Date(spec.to).toISOString()}`);
  }
  const exits = exitsFromSnake(spec.exits);
  const run = await runEngine({
    strategy,
    symbols: spec.symbols,
    barSize: spec.bar_size,
    bars: loaded.bars,
    warmup: loaded.warmup,
    broker: { startingCash: spec.cash, slippageBps: spec.slippage_bps, commissionPerShare: spec.commission_per_share, minCommission: spec.min_commission },
    risk: spec.risk,
    ...(exits ? { exits } : {}),
    calendar: spec.calendar ?? 'nyse',
    onProgress: opts.onProgress,
    onDecision: opts.onDecision,
  });
  return buildReport(run, { strategy: strategy.name, params: spec.params, from: spec.from, to: spec.to, exits: exitsToSnake(exits), calendar: spec.calendar ?? 'nyse', curve: opts.curve });
}
