/**
 * Time, injected. Actor logic and sources never call Date.now() or the global timers directly:
 * they take a Clock, so the same code runs live, accelerated and in replay.
 *
 * RealClock and ManualClock live here (market uses nothing of ours); the accelerated clock and the
 * clock shared across worker threads are in src/runtime/clock.ts.
 */

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Current time, UTC epoch ms. */
  now(): number;
  /** Runs `fn` once `ms` of this clock's time have passed. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Resolves once `ms` of this clock's time have passed (or rejects when `signal` aborts). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleepWith(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason ?? new Error('aborted'));
      return;
    }
    const onAbort = () => {
      timer.cancel();
      reject(signal?.reason ?? new Error('aborted'));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class RealClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. Timers fire in time order during `advance`/`set`.
 * Used by tests on one thread, as the worker-side half of the shared clock, and as the backtest's
 * replay clock (src/backtest/engine.ts: time is the close of the bar being handled).
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start: number) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: PendingTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }
  /** Moves time forward by `ms`, firing due timers in order (timers they set also fire if due). */
  advance(ms: number): void {
    this.set(this.current + ms);
  }
  /** Moves time to `t` (never backwards), firing due timers in order. */
  set(t: number): void {
    const target = Math.max(t, this.current);
    // No timer waiting (a backtest moves time once per bar and sets none): nothing to sift.
    if (this.timers.length === 0) {
      this.current = target;
      return;
    }
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: PendingTimer | undefined;
      for (const x of this.timers) {
        if (x.at <= target && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      }
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.current = target;
  }
  /** Number of timers still waiting. */
  pending(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
}
