/**
 * The simulator's accelerated clock: simulated time runs `speed` times faster than real time,
 * from `start`. The simulator times its 5-second bars on it, and a test can hand the same clock
 * to the adapter so both agree on what "5 seconds" and "now" mean.
 */
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../../../src/market/clock.ts';

export class AcceleratedClock implements Clock {
  readonly start: number;
  readonly speed: number;
  private readonly realStart = performance.now();

  constructor(start: number, speed: number) {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`);
    this.start = start;
    this.speed = speed;
  }

  now(): number {
    return Math.floor(this.start + (performance.now() - this.realStart) * this.speed);
  }

  /** Real milliseconds until simulated time `t`. */
  realDelayUntil(t: number): number {
    return Math.max(0, (t - this.now()) / this.speed);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms) / this.speed);
    return { cancel: () => clearTimeout(t) };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const onAbort = () => {
        timer.cancel();
        reject(signal?.reason ?? new Error('aborted'));
      };
      const timer = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
