/**
 * The backtest pool: piscina worker threads that run backtests off the caller's event loop (and
 * off every actor's thread). Workers start through pool-worker.mjs, which loads the TypeScript
 * task the way the actor runtime's bootstrap loads an actor.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import type { BacktestTask, BacktestTaskFailure, BacktestTaskResult } from './task.ts';
import { BarkeepError } from '../errors.ts';

/** A backtest that failed in a worker, with the code (and field) it failed with. */
export class BacktestTaskError extends BarkeepError {
  constructor(code: string, message: string, field?: string) {
    super(code, message, field === undefined ? {} : { field });
  }
}

export interface BacktestPool {
  readonly workers: number;
  run(task: BacktestTask): Promise<BacktestTaskResult>;
  close(): Promise<void>;
}

const WORKER = new URL('./pool-worker.mjs', import.meta.url);
/** Young generation per worker: 3 x the semi-space in V8 (two semi-spaces and the large-object part). */
const YOUNG_GENERATION_MB = 96;

export function defaultWorkers(): number {
  return Math.max(1, availableParallelism());
}

export function createPool(workers = defaultWorkers()): BacktestPool {
  if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a whole number >= 1, got ${workers}`);
  const pool = new Piscina({
    filename: WORKER.href,
    minThreads: workers,
    maxThreads: workers,
    // Idle workers give their memory back; a pool on a server lives long.
    idleTimeout: 30_000,
    // The tsx loader is registered by the worker itself; do not inherit the parent's flags twice.
    execArgv: [],
    // Semi-spaces of up to 32 MB (V8's default is 16): a backtest allocates ~7 MB of short-lived
    // objects per 20,000 bars, and what a scavenge copies is the run in progress, so scavenging
    // half as often copies about half as much. Over 64-combination sweeps: 84 scavenges instead of
    // 145, V8's helper threads' GC time halved (what a second worker competes with on 2 cores), for
    // at most 32 MB more per worker.
    resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
  });
  return {
    workers,
    async run(task) {
      const transfer = task.progress ? [task.progress] : undefined;
      const out = (await pool.run(task, transfer ? { transferList: transfer as never } : undefined)) as BacktestTaskResult | BacktestTaskFailure;
      if ('failed' in out) throw new BacktestTaskError(out.failed.code, out.failed.message, out.failed.field);
      return out;
    },
    close: () => pool.destroy(),
  };
}
