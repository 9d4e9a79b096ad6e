/**
 * Marks of where `barkeep serve`'s start-up time goes, in ms of real time since the process
 * started (performance.now(): Node's time origin is the process start, before any of our code).
 * Logged once, on the "barkeep serving" line; bench/cold-start.ts prints them.
 */
import { performance } from 'node:perf_hooks';

export class StartupTimer {
  private readonly marks: Array<[string, number]> = [];

  /** Records that the phase `name` ended now. */
  mark(name: string): void {
    this.marks.push([name, performance.now()]);
  }

  /** `{ phase: ms since process start }`, in the order marked, and `total_ms`. */
  report(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, at] of this.marks) out[`${name}_at_ms`] = Math.round(at);
    out.total_ms = Math.round(performance.now());
    return out;
  }
}
