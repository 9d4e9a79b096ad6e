/**
 * A vendor's rolling request window, as the fakes keep it: every arrival is stamped on the fake's
 * clock; a request is over the limit when more than `limit` arrived in (t - windowMs, t].
 * It also keeps the most requests ever seen in one window, so tests can assert a client never
 * exceeded the limit (even when the fake was told not to enforce it).
 */
import type { Clock } from '../../../src/market/clock.ts';

export interface RateWindowOptions {
  limit: number;
  windowMs: number;
  clock: Clock;
}

export class RateWindow {
  limit: number;
  readonly windowMs: number;
  private readonly clock: Clock;
  private arrivals: number[] = [];
  private maxSeen = 0;

  constructor(opts: RateWindowOptions) {
    this.limit = opts.limit;
    this.windowMs = opts.windowMs;
    this.clock = opts.clock;
  }

  /** Stamps one arrival; returns how many arrived in the window ending now (this one included). */
  record(): number {
    const now = this.clock.now();
    this.arrivals.push(now);
    const n = this.countAt(now);
    if (n > this.maxSeen) this.maxSeen = n;
    return n;
  }

  /** Arrivals in (now - windowMs, now]. */
  current(): number {
    return this.countAt(this.clock.now());
  }

  /** Epoch ms when the oldest arrival in the window leaves it (now when empty). */
  resetAt(): number {
    const now = this.clock.now();
    const oldest = this.arrivals.find((t) => t > now - this.windowMs);
    return oldest === undefined ? now : oldest + this.windowMs;
  }

  /** The most arrivals ever seen in one window. */
  get maxInWindow(): number {
    return this.maxSeen;
  }

  private countAt(now: number): number {
    let n = 0;
    for (let i = this.arrivals.length - 1; i >= 0 && this.arrivals[i] > now - this.windowMs; i--) n++;
    return n;
  }
}
