/**
 * One real-time subscription's state and what moves it, with no I/O: the feed (data-feed.ts) asks
 * these functions what to do and does the sending, emitting and timing itself.
 *
 * pending (requested, no bar yet) → streaming → stalled (silent for the stall time while watched:
 * re-requested at once, then with a doubling delay) or unavailable (a refusal: retried after the
 * vendor's minimum wait at least, doubling up to a cap) or bad-contract (terminal).
 */
import { BarAggregator } from '../../market/aggregate.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { TimerHandle } from '../../market/clock.ts';
import type { RealtimeState } from './data-feed-types.ts';
import type { IbRequestError } from './connection.ts';

export interface Retry {
  initialMs: number;
  maxMs: number;
}

export interface Subscription {
  symbol: string;
  barSize: BarSize;
  aggregator: BarAggregator;
  state: RealtimeState;
  reqId?: number;
  /** Silence is measured from here: the last bar, the last request, or the last pause. */
  watchFrom: number;
  lastBarAt?: number;
  requests: number;
  retryTimer?: TimerHandle;
  unavailableDelay: number;
  stallDelay: number;
  nextStallRequestAt: number;
  lastError?: { code: number; message: string; at: number };
}

export function newSubscription(symbol: string, barSize: BarSize, graceMs: number, now: number, unavailable: Retry, stall: Retry): Subscription {
  return {
    symbol,
    barSize,
    aggregator: new BarAggregator({ symbol, barSize, source: 'ibkr-realtime', graceMs }),
    state: 'pending',
    watchFrom: now,
    requests: 0,
    unavailableDelay: unavailable.initialMs,
    stallDelay: stall.initialMs,
    nextStallRequestAt: now,
  };
}

/** A 5 s bar arrived: streaming again. True when it ends a stall or an unavailable spell (recovered). */
export function barArrived(sub: Subscription, now: number, unavailable: Retry, stall: Retry): boolean {
  sub.lastBarAt = now;
  sub.watchFrom = now;
  const recovered = sub.state === 'stalled' || sub.state === 'unavailable';
  if (recovered) {
    sub.unavailableDelay = unavailable.initialMs;
    sub.stallDelay = stall.initialMs;
  }
  sub.state = 'streaming';
  return recovered;
}

/**
 * TWS refused the subscription's request (the request is dead on its side). 'bad-contract' is
 * terminal; anything else is retried after `retryMs`, and `first` says whether this began the
 * unavailable spell (reported once, not per retry).
 */
export function requestRefused(sub: Subscription, e: IbRequestError, now: number, unavailable: Retry): { kind: 'bad-contract' } | { kind: 'retry'; first: boolean; retryMs: number } {
  sub.reqId = undefined;
  sub.lastError = { code: e.code, message: e.message, at: now };
  if (e.policy.kind === 'bad-contract') {
    sub.state = 'bad-contract';
    return { kind: 'bad-contract' };
  }
  // unavailable, pacing (420 also means real-time pacing) and anything unexpected: retry slowly.
  const first = sub.state !== 'unavailable';
  if (first) {
    sub.state = 'unavailable';
    sub.unavailableDelay = Math.max(unavailable.initialMs, e.policy.retryAfterMs ?? 0);
  } else {
    sub.unavailableDelay = Math.min(unavailable.maxMs, sub.unavailableDelay * 2);
  }
  return { kind: 'retry', first, retryMs: sub.unavailableDelay };
}

/**
 * The stall check of one watched subscription at `now`: 'stall' when it has just gone silent for
 * `stallMs` (report it and request again), 'request' when a stalled one is due another request
 * (less and less often: IB allows 60 new real-time requests in 10 min), else 'none'.
 */
export function stallCheck(sub: Subscription, now: number, stallMs: number, stall: Retry): 'none' | 'stall' | 'request' {
  if (sub.reqId === undefined || (sub.state !== 'pending' && sub.state !== 'streaming' && sub.state !== 'stalled')) return 'none';
  if (now - sub.watchFrom < stallMs) return 'none';
  if (sub.state !== 'stalled') {
    sub.state = 'stalled';
    sub.stallDelay = stall.initialMs;
    sub.nextStallRequestAt = now + sub.stallDelay;
    return 'stall';
  }
  if (now < sub.nextStallRequestAt) return 'none';
  sub.stallDelay = Math.min(stall.maxMs, sub.stallDelay * 2);
  sub.nextStallRequestAt = now + sub.stallDelay;
  return 'request';
}
