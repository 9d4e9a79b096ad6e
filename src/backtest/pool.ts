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
