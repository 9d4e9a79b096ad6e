/**
 * What the collector needs from a historical bar source (Massive, Alpaca, the simulated market).
 * Vendor quirks stay inside each adapter; the collector sees only our Bar and SourceError.
 */
import type { Bar } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import { BarkeepError } from '../errors.ts';

export type SourceName = 'massive' | 'alpaca' | 'sim';
export type ApiType = 'Massive API' | 'Alpaca API' | 'Simulated';

export interface HistoricalBarSource {
  readonly name: SourceName;
  readonly apiType: ApiType;
  /**
   * Complete bars with from <= start < to (UTC epoch ms), oldest first, every page followed.
   * Rejects with a SourceError. Malformed bars inside an otherwise good response are skipped and
   * counted (see `stats`), not thrown.
   */
  fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]>;
  /**
   * Bars a backfill asks for in one fetchBars call: what suits the vendor's page size and rate
   * limit. The backfill reports progress per call. Default 20 000.
   */
  readonly backfillChunkBars?: number;
  /** Counters and rate-limit state for status and metrics. Never holds a secret. */
  stats(): SourceStats;
  close?(): Promise<void>;
}

export interface SourceStats {
  requests: number;
  errors: number;
  retries: number;
  rateLimited: number;
  malformed: number;
  /** Requests the limiter would still allow right now in its window. */
  rateLimitRemaining: number;
  rateLimitPerMin: number;
  lastError?: { code: SourceErrorCode; message: string; status?: number; at: number };
}

export type SourceErrorCode =
  | 'AUTH' // 401, missing or unknown key: not retried
  | 'FORBIDDEN' // 403 / NOT_AUTHORIZED: plan or credentials: not retried
  | 'BAD_REQUEST' // 400, 404, 422: not retried
  | 'RATE_LIMITED' // 429 after retries ran out
  | 'UNAVAILABLE' // 5xx or connection failure after retries ran out
  | 'TIMEOUT' // no answer in time after retries ran out
  | 'MALFORMED' // the whole response could not be read
  | 'ABORTED';

export class SourceError extends BarkeepError<SourceErrorCode> {
  readonly source: SourceName;
  readonly status?: number;
  /** The vendor's own message text, when it sent one. */
  readonly vendorMessage?: string;
  readonly retryable: boolean;

  constructor(
    source: SourceName,
    code: SourceErrorCode,
    message: string,
    opts: { status?: number; vendorMessage?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { cause: opts.cause });
    this.source = source;
    this.status = opts.status;
    this.vendorMessage = opts.vendorMessage;
    this.retryable = opts.retryable ?? (code === 'RATE_LIMITED' || code === 'UNAVAILABLE' || code === 'TIMEOUT');
  }
}
