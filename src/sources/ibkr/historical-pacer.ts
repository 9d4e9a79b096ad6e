/**
 * Keeps `reqHistoricalData` inside IB's pacing rules (docs/market-data.md, "Interactive Brokers data limits and codes") by queueing, never
 * rejecting:
 * 1. no identical request within 15 s;
 * 2. fewer than six requests for the same contract, exchange and tick type within 2 s (IB calls
 *    six a violation, so at most five);
 * 3. at most 60 requests in any 10 minutes.
 * A request may cost 2 (IB counts BID_ASK twice). After a 162 pacing violation the caller calls
 * `penalize(ms)`: nothing goes out until it has passed.
 *
 * Requests are granted in arrival order among those the rules allow, so a request held by its own
 * contract's limit does not hold up other contracts. Time is the injected clock's.
 *
 * IB judges when a request *arrives*; stoqey's send limiter (about 40 messages/s) can delay a
 * granted request, so every window is widened by `marginMs` (default 1 s).
 */
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { IbkrError } from './errors.ts';

export interface PacedRequest {
  /** Contract + exchange + tick type, e.g. `AAPL|SMART|TRADES`. */
  contract: string;
  /** Everything that makes two requests identical (contract, end, duration, bar size, ...). */
  identity: string;
  /** 2 for BID_ASK, else 1. */
  cost?: number;
}

export interface HistoricalPacerOptions {
  identicalWindowMs?: number;
  perContractLimit?: number;
  perContractWindowMs?: number;
  windowLimit?: number;
  windowMs?: number;
  /** Added to every window, for the time between grant and arrival at IB. Default 1000. */
  marginMs?: number;
}

interface Grant {
  at: number;
  contract: string;
  identity: string;
  cost: number;
}

interface Waiter {
  req: Required<PacedRequest>;
  resolve: (grantedAt: number) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export interface HistoricalPacerStats {
  queued: number;
  granted: number;
  /** Cost granted within the last `windowMs`. */
  inWindow: number;
  blockedUntil: number;
}

export class HistoricalPacer {
  readonly identicalWindowMs: number;
  readonly perContractLimit: number;
  readonly perContractWindowMs: number;
  readonly windowLimit: number;
  readonly windowMs: number;
  readonly marginMs: number;
  private readonly clock: Clock;
  private grants: Grant[] = [];
  private queue: Waiter[] = [];
  private blockedUntil = Number.NEGATIVE_INFINITY;
  private timer?: TimerHandle;
  private timerAt = Number.POSITIVE_INFINITY;
  private grantedCount = 0;
  private closed = false;

  constructor(clock: Clock, opts: HistoricalPacerOptions = {}) {
    this.clock = clock;
    this.identicalWindowMs = opts.identicalWindowMs ?? 15_000;
    this.perContractLimit = opts.perContractLimit ?? 5;
    this.perContractWindowMs = opts.perContractWindowMs ?? 2_000;
    this.windowLimit = opts.windowLimit ?? 60;
    this.windowMs = opts.windowMs ?? 600_000;
    this.marginMs = opts.marginMs ?? 1_000;
    for (const [name, v] of Object.entries({
      perContractLimit: this.perContractLimit,
      windowLimit: this.windowLimit,
    })) {
      if (!Number.isInteger(v) || v < 2) throw new IbkrError('IBKR_BAD_INPUT', `${name} must be an integer >= 2, got ${v}`);
    }
  }

  /** Resolves with the clock time at which the request may be sent (and is counted as sent). */
  acquire(request: PacedRequest, signal?: AbortSignal): Promise<number> {
    if (this.closed) return Promise.reject(new IbkrError('IBKR_CLOSED', 'the historical pacer is closed'));
    const req = { cost: 1, ...request };
    if (req.cost !== 1 && req.cost !== 2) return Promise.reject(new IbkrError('IBKR_BAD_INPUT', `cost must be 1 or 2, got ${req.cost}`));
    return new Promise<number>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new IbkrError('IBKR_ABORTED', 'aborted before the request was paced'));
        return;
      }
      const waiter: Waiter = { req, resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          this.queue = this.queue.filter((w) => w !== waiter);
          reject(new IbkrError('IBKR_ABORTED', 'aborted while waiting for pacing'));
          this.pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.pump();
    });
  }

  /** After a pacing violation: nothing is granted for `ms`. */
  penalize(ms: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, this.clock.now() + ms);
    this.pump();
  }

  /** The earliest time `request` could be granted, given what was granted so far. */
  earliest(request: PacedRequest, now = this.clock.now()): number {
    const cost = request.cost ?? 1;
    let t = Math.max(now, this.blockedUntil);
    for (const g of this.grants) {
      if (g.identity === request.identity) t = Math.max(t, g.at + this.identicalWindowMs + this.marginMs);
    }
    const sameContract = this.grants.filter((g) => g.contract === request.contract);
    t = Math.max(t, this.windowFree(sameContract, cost, this.perContractLimit, this.perContractWindowMs + this.marginMs, now));
    t = Math.max(t, this.windowFree(this.grants, cost, this.windowLimit, this.windowMs + this.marginMs, now));
    return t;
  }

  stats(): HistoricalPacerStats {
    const now = this.clock.now();
    return {
      queued: this.queue.length,
      granted: this.grantedCount,
      inWindow: this.grants.filter((g) => now - g.at < this.windowMs).reduce((s, g) => s + g.cost, 0),
      blockedUntil: this.blockedUntil,
    };
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    for (const w of this.queue) {
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(new IbkrError('IBKR_CLOSED', 'the historical pacer is closed'));
    }
    this.queue = [];
  }

  /**
   * Earliest T >= now at which a request of `cost` fits: the grants in (T - windowMs, T] plus
   * `cost` must not exceed `limit`.
   */
  private windowFree(grants: Grant[], cost: number, limit: number, windowMs: number, now: number): number {
    const recent = grants.filter((g) => now - g.at < windowMs);
    let used = recent.reduce((s, g) => s + g.cost, 0);
    if (used + cost <= limit) return now;
    // Drop the oldest until it fits; T is when the last dropped one leaves the window.
    for (const g of recent) {
      used -= g.cost;
      if (used + cost <= limit) return g.at + windowMs;
    }
    return now;
  }

  private pump(): void {
    if (this.closed) return;
    const now = this.clock.now();
    const keep = Math.max(this.windowMs, this.identicalWindowMs, this.perContractWindowMs) + this.marginMs;
    this.grants = this.grants.filter((g) => now - g.at < keep);
    let next = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i];
      const at = this.earliest(w.req, now);
      if (at <= now) {
        this.queue.splice(i, 1);
        this.grants.push({ at: now, contract: w.req.contract, identity: w.req.identity, cost: w.req.cost });
        this.grantedCount++;
        if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
        w.resolve(now);
        continue;
      }
      next = Math.min(next, at);
      i++;
    }
    if (next === Number.POSITIVE_INFINITY) {
      this.timer?.cancel();
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.timer && this.timerAt === next) return;
    this.timer?.cancel();
    this.timerAt = next;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      this.pump();
    }, next - now);
  }
}
