/**
 * Parameter sweeps: every combination of `--grid name=from:to:step` (or `name=a,b,c`) runs as one
 * task on the pool. A combination that fails (bad parameters, a strategy that throws) is reported
 * failed with its reason; the others complete. Results are sorted by a metric, best first.
 *
 * With a train/test split, the sweep runs on the first part of the span only; the best combination
 * is then run on the rest, bars it was not chosen on, and both reports are given.
 */
import type { BacktestPool } from './pool.ts';
import type { BacktestTaskResult } from './task.ts';
import type { BacktestDetail, BacktestReport, Metrics } from './report.ts';
import type { BacktestSpec, BarSourceSpec } from './spec.ts';
import type { ThreadCpu } from './thread-cpu.ts';
import { BarkeepError } from '../errors.ts';

export interface GridAxis {
  name: string;
  values: Array<number | string | boolean>;
}

export class GridError extends BarkeepError<'BACKTEST_GRID'> {
  constructor(message: string) {
    super('BACKTEST_GRID', message, { field: 'grid' });
  }
}

const MAX_COMBINATIONS = 10_000;

/** `fast=5:20:5` (from, to inclusive, step), `fast=5,10,20`, or `flag=true,false`. */
export function parseGrid(text: string): GridAxis {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(text.trim());
  if (!m) throw new GridError(`--grid ${JSON.stringify(text)}: expected name=from:to:step or name=a,b,c`);
  const [, name, spec] = m;
  const range = /^(-?[\d.]+):(-?[\d.]+):([\d.]+)$/.exec(spec);
  if (range) {
    const [from, to, step] = range.slice(1).map(Number);
    if (![from, to, step].every(Number.isFinite) || step <= 0 || to < from) {
      throw new GridError(`--grid ${name}: ${spec} needs from <= to and a step > 0`);
    }
    const values: number[] = [];
    const n = Math.floor((to - from) / step + 1e-9);
    if (n + 1 > MAX_COMBINATIONS) throw new GridError(`--grid ${name}: ${n + 1} values is too many`);
    // Rounded to the step's decimals, so 0.1 steps give 0.3, not 0.30000000000000004.
    const decimals = (String(step).split('.')[1] ?? '').length + (String(from).split('.')[1] ?? '').length;
    for (let i = 0; i <= n; i++) values.push(Number((from + i * step).toFixed(decimals)));
    return { name, values };
  }
  const values = spec
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0)
    .map(parseValue);
  if (values.length === 0) throw new GridError(`--grid ${name}: no values`);
  return { name, values };
}

/** A parameter value as typed on a command line: a number, true/false, or else the text. */
export function parseValue(text: string): number | string | boolean {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(text)) return Number(text);
  return text;
}

export function combinations(axes: readonly GridAxis[]): Array<Record<string, number | string | boolean>> {
  let out: Array<Record<string, number | string | boolean>> = [{}];
  for (const axis of axes) {
    const next: typeof out = [];
    for (const base of out) for (const v of axis.values) next.push({ ...base, [axis.name]: v });
    out = next;
    if (out.length > MAX_COMBINATIONS) throw new GridError(`the grid has more than ${MAX_COMBINATIONS} combinations`);
  }
  return out;
}

export const SORT_KEYS = [
  'final_equity',
  'pnl',
  'total_return',
  'cagr',
  'sharpe',
  'sortino',
  'max_drawdown',
  'max_drawdown_duration_days',
  'win_rate',
  'profit_factor',
  'exposure',
  'turnover',
  'commissions',
  'trades',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
/** Metrics where less is better. */
const LOWER_IS_BETTER: ReadonlySet<SortKey> = new Set(['max_drawdown', 'max_drawdown_duration_days', 'commissions']);

export interface SweepRow {
  params: Record<string, unknown>;
  ok: boolean;
  report?: BacktestReport;
  error?: { code: string; message: string };
}

export interface SweepResult {
  sort: SortKey;
  /** Every combination, best first; failed ones last. */
  rows: SweepRow[];
  best: { report: BacktestReport; detail: BacktestDetail } | null;
  /** With a split: the best combination run on the test part of the span. */
  test: { report: BacktestReport; detail: BacktestDetail } | null;
  /** Why the test run failed (no bars in the test part, for example). */
  test_error: string | null;
  train: { from: number; to: number } | null;
  workers: number;
  /** V8 heap in use per worker after its last task, MiB. */
  heap_mib: Record<string, number>;
  /** Per worker, its thread's CPU and wait for a core since it started, after its last task (null off Linux). */
  cpu: Record<string, ThreadCpu | null>;
}

/** Negative when `a` ranks before `b` by `key` (failed rows and null metrics last), 0 when tied. */
function compareRows(a: SweepRow, b: SweepRow, key: SortKey): number {
  const x = a.ok ? (a.report![key as keyof Metrics] as number | null) : null;
  const y = b.ok ? (b.report![key as keyof Metrics] as number | null) : null;
  if (x === null || y === null) return (x === null ? 1 : 0) - (y === null ? 1 : 0);
  return (LOWER_IS_BETTER.has(key) ? 1 : -1) * (x - y);
}

export function sortRows(rows: SweepRow[], key: SortKey): SweepRow[] {
  return [...rows].sort((a, b) => compareRows(a, b, key));
}

export interface SweepOptions {
  pool: BacktestPool;
  base: BacktestSpec;
  axes: readonly GridAxis[];
  source: BarSourceSpec;
  sort: SortKey;
  /** Fraction of the span (by time) to choose on; the rest tests the choice. */
  train?: number;
  onProgress?: (done: number, total: number, failed: number) => void;
}

/** Splits [from, to) at `fraction` of its length, on a whole minute. */
export function splitSpan(from: number, to: number, fraction: number): number {
  const at = from + Math.floor(((to - from) * fraction) / 60_000) * 60_000;
  return Math.min(Math.max(at, from + 60_000), to - 60_000);
}

export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const combos = combinations(o.axes);
  const split = o.train !== undefined ? splitSpan(o.base.from, o.base.to, o.train) : null;
  const trainSpec: BacktestSpec = split !== null ? { ...o.base, to: split } : o.base;
  const heap: Record<string, number> = {};
  const cpu: Record<string, ThreadCpu | null> = {};
  let done = 0;
  let failed = 0;
  // The best combination is run again with its detail. Run last, it would run alone on one worker
  // while the others idle; so near the end of the grid, the first worker to be free while fewer
  // combinations wait than there are other workers runs the best one so far instead, and the other
  // workers finish the grid meanwhile. It is the winner unless one of the last few beats it (then
  // the winner is run after all, as without this). One worker: run at the end, as it would be.
  let leader: { row: SweepRow; index: number } | undefined;
  let early: { row: SweepRow; run: Promise<BacktestTaskResult> } | undefined;
  const detailRun = (params: Record<string, unknown>) =>
    o.pool.run({ spec: { ...trainSpec, params }, source: o.source, detail: true }).then((r) => {
      cpu[r.thread_id] = r.cpu;
      return r;
    });
  const rows: SweepRow[] = new Array(combos.length);
  const runCombination = async (index: number): Promise<void> => {
    const params = { ...o.base.params, ...combos[index] };
    let row: SweepRow;
    try {
      const r = await o.pool.run({ spec: { ...trainSpec, params }, source: o.source, detail: false, curve: false });
      heap[r.thread_id] = r.heap_mib;
      cpu[r.thread_id] = r.cpu;
      row = { params, ok: true, report: r.report };
    } catch (err) {
      failed++;
      const e = err as { code?: unknown; message?: unknown };
      row = { params, ok: false, error: { code: typeof e?.code === 'string' ? e.code : 'BACKTEST_FAILED', message: String(e?.message ?? err) } };
    }
    // Ties go to the earlier combination, as the stable sort below breaks them.
    if (row.ok && (leader === undefined || compareRows(row, leader.row, o.sort) < 0 || (compareRows(row, leader.row, o.sort) === 0 && index < leader.index))) leader = { row, index };
    rows[index] = row;
    o.onProgress?.(++done, combos.length, failed);
  };
  // One lane per worker, each sending its next task when its last one is done: the sweep, not the
  // pool's queue, chooses what a worker that comes free runs next.
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < combos.length) {
      if (early === undefined && leader !== undefined && o.pool.workers > 1 && combos.length - next < o.pool.workers) {
        early = { row: leader.row, run: detailRun(leader.row.params) };
        // An early run that is not the winner's is dropped unread; its failure is the winner's to report.
        await early.run.catch(() => undefined);
        continue;
      }
      await runCombination(next++);
    }
  };
  o.onProgress?.(0, combos.length, 0);
  await Promise.all(Array.from({ length: Math.min(o.pool.workers, combos.length) }, lane));
  const sorted = sortRows(rows, o.sort);
  const winner = sorted.find((r) => r.ok);
  let best: SweepResult['best'] = null;
  let test: SweepResult['test'] = null;
  let testError: string | null = null;
  if (winner) {
    const r = await (early?.row === winner ? early.run : detailRun(winner.params));
    best = { report: r.report, detail: r.detail! };
    if (split !== null) {
      try {
        const t = await o.pool.run({ spec: { ...o.base, from: split, params: winner.params }, source: o.source, detail: true });
        test = { report: t.report, detail: t.detail! };
      } catch (err) {
        testError = (err as Error).message;
      }
    }
  }
  return { sort: o.sort, rows: sorted, best, test, test_error: testError, train: split !== null ? { from: o.base.from, to: split } : null, workers: o.pool.workers, heap_mib: heap, cpu };
}
