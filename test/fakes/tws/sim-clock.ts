/**
 * The simulator's accelerated clock: simulated time runs `speed` times faster than real time,
 * from `start`. The simulator times its 5-second bars on it unless a test hands it a ManualClock
 * (the deterministic choice); a test can hand the same clock to the adapter so both agree on what
 * "5 seconds" and "now" mean.
 */
import { performance } from 'node:perf_hooks';
import { type Clock, sleepWith, type TimerHandle } from '../../../src/market/clock.ts';

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

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms) / this.speed);
    return { cancel: () => clearTimeout(t) };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
}
