/**
 * The feed arbiter's contract. Control (main thread -> arbiter): status. Data: the collector tells
 * it which keys it wrote; the trader subscribes its symbols; the arbiter hands the trader each bar's
 * key once, in order per symbol.
 */
import { BarkeepError } from '../../errors.ts';
import type { BarSource } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';

export type Rung = 'ibkr-realtime' | 'preload' | 'cache' | 'ibkr-historical';

export interface ArbiterConfig {
  dataDir: string;
  storage: { sourcePrecedence: string[] };
  cacheMaxAgeMs: number;
  preloadBars: number;
  climbBackAfterBars: number;
  stallIntervals: number;
  realtimeGraceMs: number;
  historicalPollMs: number;
  ibkr: { host: string; port: number; clientId: number; reconnectInitialMs: number; reconnectMaxMs: number } | null;
}

export interface FeedState {
  rung: Rung | null;
  since: string | null;
  reason: string;
  last_bar_time: string | null;
  /** Why each better rung is not serving, rung -> reason. */
  unavailable: Partial<Record<Rung, string>>;
}

export interface ArbiterStatus {
  symbols: string[];
  bar_size: BarSize | null;
  feed: Record<string, FeedState>;
  switches: number;
  ibkr: { enabled: boolean; connection: string; errors: Record<string, number> };
}

export type ArbiterRequests = {
  status: { req: {}; res: ArbiterStatus };
};

/** A bar key handed to the trader. The trader reads the bar itself from the cache. */
export interface BarRef {
  symbol: string;
  barSize: BarSize;
  start: number;
  source: BarSource;
}

/**
 * Bar keys handed on in one event-loop turn, in order, as one message between the threads
 * (trader-batch.ts): bar i is `symbols[i]`, `starts[i]`, `sources[i]`. The arbiter itself speaks
 * `bar`; its actor gathers them, so a minute's close for thousands of symbols is one postMessage.
 */
export interface BarsMessage {
  type: 'bars';
  barSize: BarSize;
  symbols: string[];
  starts: number[];
  sources: BarSource[];
}

export type ArbiterToTrader =
  | { type: 'warmup'; symbol: string; barSize: BarSize; starts: number[] }
  | ({ type: 'bar' } & BarRef)
  | BarsMessage
  | { type: 'feed'; symbol: string; rung: Rung | null; reason: string };

export type TraderToArbiter = { type: 'subscribe'; symbols: string[]; barSize: BarSize; after: Record<string, number>; warmup: boolean } | { type: 'unsubscribe' };

/** Every code an arbiter error carries (see src/errors.ts). */
export type ArbiterErrorCode = 'IBKR_ALREADY_BOUND'; // an IBKR feed was bound to a second arbiter

export class ArbiterError extends BarkeepError<ArbiterErrorCode> {}
