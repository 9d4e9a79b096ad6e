/**
 * What a pool worker does with one task: run one backtest and return its report. Only the spec and
 * the report cross the thread; the worker opens the LMDB environment itself (once per worker) and
 * keeps the bars it read for the last span, so a sweep's combinations reuse them.
 */
import { getHeapStatistics } from 'node:v8';
import { type MessagePort, threadId } from 'node:worker_threads';
import type { BarSource } from '../market/bar.ts';
import { openStorage, type Storage } from '../storage/storage.ts';
import { loadBars, type LoadedBars } from './bars.ts';
import type { BacktestDetail, BacktestReport } from './report.ts';
import { runSpec } from './run.ts';
import type { BacktestSpec, BarSourceSpec } from './spec.ts';
import { type ThreadCpu, threadCpu } from './thread-cpu.ts';

export interface BacktestTask {
  spec: BacktestSpec;
  source: BarSourceSpec;
  /** Return the trade, order, fill and daily lists too (the best run of a sweep; HTTP). */
  detail: boolean;
  /** false: no equity curve in the report (a sweep's rows: less to build and to clone across the thread). */
  curve?: boolean;
  /** Test hook: a MessagePort the worker posts progress to ({ done, total }). */
  progress?: MessagePort;
}

export interface BacktestTaskResult {
  report: BacktestReport;
  detail?: BacktestDetail;
  /** This worker's V8 heap in use after the run, MiB. */
  heap_mib: number;
  /** This worker's thread id (determinism tests check several workers took part). */
  thread_id: number;
  /** This worker thread's CPU and wait for a core since it started, ms, after the run (null off Linux). */
  cpu: ThreadCpu | null;
  /** Wall time of the run in this worker, ms (bars read included when not cached). */
  ms: number;
}

let storage: { dir: string; s: Storage } | undefined;
let cached: { key: string; bars: LoadedBars } | undefined;

function storageFor(source: BarSourceSpec): Storage {
  if (storage?.dir !== source.dataDir) {
    void storage?.s.close();
    storage = { dir: source.dataDir, s: openStorage({ path: source.dataDir, sourcePrecedence: source.sourcePrecedence as BarSource[] }) };
    cached = undefined;
  }
  return storage.s;
}

/** A failed run, as data: an Error's own fields (code, field) do not survive the thread. */
export interface BacktestTaskFailure {
  failed: { code: string; message: string; field?: string };
}

export default async function backtestTask(task: BacktestTask): Promise<BacktestTaskResult | BacktestTaskFailure> {
  try {
    return await run(task);
  } catch (err) {
    task.progress?.close();
    const e = err as { code?: unknown; message?: unknown; field?: unknown };
    return {
      failed: {
        code: typeof e?.code === 'string' ? e.code : 'BACKTEST_FAILED',
        message: typeof e?.message === 'string' ? e.message : String(err),
        ...(typeof e?.field === 'string' ? { field: e.field } : {}),
      },
    };
  }
}

async function run(task: BacktestTask): Promise<BacktestTaskResult> {
  const t0 = performance.now();
  const { spec } = task;
  const s = storageFor(task.source);
  const key = JSON.stringify([spec.symbols, spec.bar_size, spec.from, spec.to, spec.warmup_bars]);
  if (cached?.key !== key) cached = { key, bars: loadBars(s.bars, spec.symbols, spec.bar_size, spec.from, spec.to, spec.warmup_bars) };
  const port = task.progress;
  const out = await runSpec(spec, s.bars, {
    bars: cached.bars,
    onProgress: port ? (done, total) => port.postMessage({ done, total }) : undefined,
    curve: task.curve,
  });
  port?.close();
  return {
    report: out.report,
    ...(task.detail ? { detail: out.detail } : {}),
    heap_mib: getHeapStatistics().used_heap_size / 2 ** 20,
    thread_id: threadId,
    cpu: threadCpu(),
    ms: performance.now() - t0,
  };
}
