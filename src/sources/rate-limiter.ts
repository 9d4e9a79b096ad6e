/**
 * A sliding-window rate limiter: never more than `limit` acquisitions start inside any window of
 * `windowMs` (rolling, half-open: a request at t frees its slot at exactly t + windowMs), measured
 * on the injected clock. One limiter is shared by every request of one source instance, pages and
 * retries included, because the vendor counts them all against the same key.
 *
 * Waiters are served first in, first out, so a long pagination cannot be starved by newcomers.
 * `limit: Infinity` turns the limiter off without keeping any stamps (benchmarks, paid plans).
 */
import type { Clock, TimerHandle } from '../market/clock.ts';

export interface RateLimiterOptions {
  limit: number;
  windowMs: number;
  clock: Clock;
  /**
   * Extra ms a slot stays taken after its window. Requests start on our clock but the vendor
   * counts them on arrival; a small guard keeps network jitter from putting limit + 1 requests into
   * one of the vendor's windows. 0 (exact) by default.
   */
  guardMs?: number;
  /**
   * A budget this limiter's key shares with other processes (cluster mode: cluster/rate-share.ts),
   * taken after a local slot: a request starts when both allow it.
   */
  shared?: SharedRateGate;
}

/** A rate budget shared beyond this process. */
export interface SharedRateGate {
  /** Resolves when a request may start; the slot is taken at that moment. */
  acquire(signal?: AbortSignal): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class RateLimiter {
  readonly limit: number;
  readonly windowMs: number;
  private readonly clock: Clock;
  private readonly holdMs: number;
  /** Start times of the acquisitions still inside the window, oldest first, from index `head`. */
  private stamps: number[] = [];
  private head = 0;
  private waiters: Waiter[] = [];
  private pausedUntil = 0;
  private timer: TimerHandle | undefined;
  private timerAt = 0;
  private readonly shared?: SharedRateGate;

  constructor(opts: RateLimiterOptions) {
    if (!(opts.limit > 0)) throw new RangeError(`rate limiter: limit must be > 0, got ${opts.limit}`);
    if (!(opts.windowMs > 0) || !Number.isFinite(opts.windowMs)) {
      throw new RangeError(`rate limiter: windowMs must be a positive number, got ${opts.windowMs}`);
    }
    this.limit = opts.limit;
    this.windowMs = opts.windowMs;
    this.clock = opts.clock;
    this.holdMs = opts.windowMs + Math.max(0, opts.guardMs ?? 0);
    this.shared = opts.shared;
  }

  /** Resolves when a request may start; the slot is taken at that moment. */
  acquire(signal?: AbortSignal): Promise<void> {
    const local = this.acquireLocal(signal);
    const shared = this.shared;
    return shared ? local.then(() => shared.acquire(signal)) : local;
  }

  private acquireLocal(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.waiters.length === 0 && this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason ?? new Error('aborted'));
          this.schedule();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.schedule();
    });
  }

  /** Requests that could start right now. */
  remaining(): number {
    const now = this.clock.now();
    if (now < this.pausedUntil) return 0;
    if (this.limit === Infinity) return Infinity;
    this.prune(now);
    return Math.max(0, this.limit - this.inWindow());
  }

  /** Holds every acquisition until `ts` (clock ms); used when the vendor says the window is spent. */
  pauseUntil(ts: number): void {
    if (!(ts > this.pausedUntil)) return;
    this.pausedUntil = ts;
    this.schedule();
  }

  /** When the next slot frees: now if one is free, else the oldest stamp's expiry (or the pause end). */
  freeAt(): number {
    const now = this.clock.now();
    let at = now;
    if (this.limit !== Infinity) {
      this.prune(now);
      const n = this.inWindow();
      if (n >= this.limit) at = this.stamps[this.head + n - this.limit] + this.holdMs;
    }
    return Math.max(at, this.pausedUntil);
  }

  /** When the oldest request still in the window frees its slot (now when the window is empty). */
  windowFreesAt(): number {
    const now = this.clock.now();
    if (this.limit === Infinity) return Math.max(now, this.pausedUntil);
    this.prune(now);
    const oldest = this.inWindow() > 0 ? this.stamps[this.head] + this.holdMs : now;
    return Math.max(oldest, now);
  }

  /** Rejects every waiter (used on close). */
  cancelAll(reason: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    this.timer?.cancel();
    this.timer = undefined;
    for (const w of waiters) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(reason);
    }
  }

  private inWindow(): number {
    return this.stamps.length - this.head;
  }

  private prune(now: number): void {
    while (this.head < this.stamps.length && this.stamps[this.head] + this.holdMs <= now) this.head++;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
  }

  private tryTake(): boolean {
    const now = this.clock.now();
    if (now < this.pausedUntil) return false;
    if (this.limit === Infinity) return true;
    this.prune(now);
    if (this.inWindow() >= this.limit) return false;
    this.stamps.push(now);
    return true;
  }

  private drain(): void {
    while (this.waiters.length > 0 && this.tryTake()) {
      const w = this.waiters.shift()!;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.waiters.length === 0) {
      this.timer?.cancel();
      this.timer = undefined;
      return;
    }
    const at = this.freeAt();
    if (this.timer && this.timerAt === at) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, at - this.clock.now());
  }
}
