/**
 * The collector's contract. Control (main thread -> collector): start, stop, status, backfill.
 * Data (collector -> arbiter, on their peer port): which bar keys it just wrote to the cache.
 */
import type { WireSourceStats } from './wire-stats.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { BarkeepError } from '../../errors.ts';
import type { ApiType, SourceName } from '../../sources/types.ts';
import type { RateBudget } from './rate-budget.ts';
import type { StreamHealth, StreamMode } from './stream-ingest.ts';

export interface CollectorConfig {
  dataDir: string;
  storage: { retentionDays: Partial<Record<BarSize, number>>; sourcePrecedence: string[]; pruneIntervalS: number };
  autostart: { symbols: string[]; barSize: BarSize } | null;
  /**
   * Take the running state back from the LMDB checkpoint at start (default true). `barkeep backfill`
   * sets false: its collector must neither run cycles nor overwrite the server's checkpoint.
   */
  resume?: boolean;
  schedule: { marketHoursIntervalMs: number; offHoursIntervalMs: number; settleMs: number };
  backfillDays: number;
  failoverAfterFailures: number;
  retryPreferredAfterMs: number;
  massive: { apiKey: string; restUrl: string; rateLimitPerMin: number; timeoutMs: number; websocket: boolean; wsUrl: string } | null;
  alpaca: { keyId: string; secretKey: string; dataUrl: string; feed: string; rateLimitPerMin: number; timeoutMs: number; websocket: boolean; wsUrl: string } | null;
  sim: { seed: number; session: 'always' | 'nyse' };
  /** Cluster mode: vendor budgets are shared with the other nodes through NATS (cluster/rate-share.ts). */
  cluster?: { natsUrl: string; nodeId: string } | null;
  /** Webhooks for collection failures (null: none). */
  notify?: import('../../notify/webhook.ts').NotifyConfig | null;
  /** While a stream is live, REST reconciles at this cadence (collector.reconcile_interval_s). */
  reconcileIntervalMs?: number;
  /** A stream silent this long in session is stalled (collector.stream_stall_intervals bar intervals). */
  streamStallMs?: number;
}

export interface CollectorStatus {
  is_running: boolean;
  symbols: string[];
  bar_size: BarSize;
  /** The source collecting now. */
  api_type: ApiType;
  source: SourceName;
  /** The best configured source; differs from `source` while failed over. */
  preferred_source: SourceName;
  failover_reason: string | null;
  /** Symbol -> ISO time of its last successful collection. */
  last_collection_times: Record<string, string>;
  is_trading_hours: boolean;
  next_cycle_at: string | null;
  cycles: number;
  /** Cycles aborted at their total deadline (a source that stalled or drip-fed). */
  cycles_overrun: number;
  /** When the cycle under way started; null between cycles. */
  cycle_started_at: string | null;
  bars_written: number;
  /** Most recent errors, newest first (no secrets). */
  errors: Array<{ at: string; source: SourceName; symbol?: string; code: string; status?: number; message: string }>;
  /** Per configured source: request counts and rate-limit state. */
  sources: Partial<Record<SourceName, WireSourceStats>>;
  /** `stream` while the active source's stream brings the bars (REST reconciles), else `rest`. */
  mode: StreamMode;
  /** Per source with `websocket` on: the stream's health (stream-ingest.ts). */
  streams: Partial<Record<SourceName, StreamHealth>>;
  /** The REST cadence's cost against the active vendor's rate limit; null for the simulated market. */
  rate_budget: RateBudget | null;
}

export type CollectorRequests = {
  start: { req: { symbols: string[]; bar_size: BarSize }; res: CollectorStatus };
  stop: { req: {}; res: CollectorStatus };
  status: { req: {}; res: CollectorStatus };
  /** Runs one collection cycle now (tests, and `barkeep backfill`). */
  collectNow: { req: {}; res: CollectorStatus };
  /** Starts filling the cache for one symbol over [from, to) (epoch ms) in the background. */
  backfill: { req: { symbol: string; bar_size: BarSize; from: number; to: number }; res: BackfillJob };
  backfillStatus: { req: {}; res: BackfillJob | null };
};

export interface BackfillJob {
  symbol: string;
  bar_size: BarSize;
  from: string;
  to: string;
  state: 'running' | 'done' | 'failed';
  done_until: string;
  /** 0 to 1. */
  progress: number;
  bars_written: number;
  error: string | null;
}

/**
 * Collector -> arbiter: these bars are in the cache now. One message carries every key written in
 * one event-loop turn (a stream's minute close: one bar of each of thousands of symbols): symbol
 * `symbols[i]` has `counts[i]` starts, in order, in the flat `starts` (written-batch.ts).
 * `sources[j]` is the source code (BAR_SOURCE_CODE) the cache held for `starts[j]` when the write
 * committed, or -1 when the writer did not say.
 * `ids[i]` is a small integer the sending WrittenBatch gave `symbols[i]` the first time it wrote it,
 * the same for the life of that batch (`epoch` names it): the arbiter resolves a known id to its
 * table row with one typed-array read instead of a string-keyed Map lookup per bar
 * (src/actors/arbiter/symbol-rows.ts). Optional, so a notice without them still works.
 */
export type CollectorToArbiter = {
  type: 'bars-written';
  barSize: BarSize;
  symbols: string[];
  counts: number[];
  starts: number[];
  sources: number[];
  ids?: number[];
  epoch?: number;
};

/** Every code a collector error carries (see src/errors.ts). */
export type CollectorErrorCode =
  | 'BAD_REQUEST' // a control request's body is invalid; `field` names the key
  | 'CONFLICT' // a backfill is already running
  | 'INVALID_BAR' // a source returned bars the cache would refuse (skipped and recorded)
  | 'SCHEDULE_BAD_CONFIG'; // schedule settings the collector cannot run on

export class CollectorError extends BarkeepError<CollectorErrorCode> {}
