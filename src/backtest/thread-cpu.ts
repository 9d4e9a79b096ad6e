/**
 * The calling thread's CPU time and the time it waited, runnable, for a core (Linux's
 * /proc/thread-self/schedstat, nanosecond counters since the thread started). The backtest
 * benchmark adds these up per sweep to say where a machine's cores went: to the pool's workers, to
 * the main thread, or to V8's helper threads (garbage collection). null where /proc has no such file.
 */
import { readFileSync } from 'node:fs';

export interface ThreadCpu {
  /** Time on a core, ms. */
  run_ms: number;
  /** Time runnable but waiting for a core, ms. */
  wait_ms: number;
}

export function threadCpu(): ThreadCpu | null {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return Number.isFinite(run) && Number.isFinite(wait) ? { run_ms: run / 1e6, wait_ms: wait / 1e6 } : null;
  } catch {
    return null;
  }
}
