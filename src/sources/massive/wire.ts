/**
 * Massive's (ex-Polygon) aggregates format, read into our Bar. See docs/market-data.md, "Massive" › Aggregates, Statuses.
 * Pure functions: no I/O, so the benchmark can time parsing alone.
 */
import type { Bar } from '../../market/bar.ts';
import { type BarSize, barSizeMs } from '../../market/bar-size.ts';
import { SourceError, type SourceErrorCode } from '../types.ts';
import { codeForStatus, type VendorReply, vendorText } from '../http.ts';
import { ohlcvProblem, type WireOhlcv, wireBar } from '../wire-bar.ts';

export const MASSIVE_TIMESPAN: Record<BarSize, { multiplier: number; timespan: 'minute' | 'hour' | 'day' }> = {
  '1Min': { multiplier: 1, timespan: 'minute' },
  '5Min': { multiplier: 5, timespan: 'minute' },
  '15Min': { multiplier: 15, timespan: 'minute' },
  '30Min': { multiplier: 30, timespan: 'minute' },
  '1Hour': { multiplier: 1, timespan: 'hour' },
  '1Day': { multiplier: 1, timespan: 'day' },
};

/** `status` values that mean success; DELAYED is a plan with delayed entitlement, still data. */
export const MASSIVE_OK_STATUSES = new Set(['OK', 'DELAYED']);

export interface AggsPage {
  bars: Bar[];
  /** Bars in `results` that failed validation and were skipped. */
  malformed: number;
  /** What was wrong with the first skipped bar, for the log. */
  firstProblem?: string;
  nextUrl?: string;
  status: string;
}

/**
 * Reads one aggregates page. Bars outside from <= t < to are dropped silently (Massive's `to` is
 * inclusive); bars that are not sane are skipped and counted. Throws MALFORMED when the envelope
 * itself cannot be read.
 */
export function parseAggsPage(body: unknown, symbol: string, barSize: BarSize, from: number, to: number, receivedAt: number): AggsPage {
  const env = body as { status?: unknown; results?: unknown; next_url?: unknown };
  const status = typeof env.status === 'string' ? env.status : '';
  const results = env.results;
  if (results !== undefined && results !== null && !Array.isArray(results)) {
    throw new SourceError('massive', 'MALFORMED', 'massive: aggregates `results` is not an array');
  }
  const nextUrl = env.next_url;
  if (nextUrl !== undefined && nextUrl !== null && typeof nextUrl !== 'string') {
    throw new SourceError('massive', 'MALFORMED', 'massive: aggregates `next_url` is not a string');
  }
  const bars: Bar[] = [];
  let malformed = 0;
  let firstProblem: string | undefined;
  const aligned = barSize !== '1Day' ? barSizeMs(barSize) : 0;
  if (results) {
    for (let i = 0; i < results.length; i++) {
      const r = results[i] as Record<string, unknown> | null;
      const problem = aggProblem(r, aligned);
      if (problem) {
        malformed++;
        firstProblem ??= `results[${i}]: ${problem}`;
        continue;
      }
      const a = r as unknown as WireOhlcv & { t: number };
      if (a.t < from || a.t >= to) continue;
      bars.push(wireBar(a, symbol, barSize, a.t, 'massive', receivedAt));
    }
  }
  return { bars, malformed, firstProblem, nextUrl: nextUrl || undefined, status };
}

/** Why an aggregate is not a usable bar, or undefined when it is. */
function aggProblem(r: Record<string, unknown> | null, alignMs: number): string | undefined {
  if (r === null || typeof r !== 'object') return 'not an object';
  const { t } = r;
  if (typeof t !== 'number' || !Number.isInteger(t) || t <= 0) return 't is not a positive integer ms timestamp';
  if (alignMs > 0 && t % alignMs !== 0) return `t ${t} is not aligned to the bar size`;
  return ohlcvProblem(r);
}

/** Maps a Massive error reply to a SourceError; the vendor text is in `error` or `message`. */
export function massiveError(reply: VendorReply, body: unknown, path: string, codeOverride?: SourceErrorCode): SourceError {
  const b = (body ?? {}) as { status?: unknown; error?: unknown; message?: unknown };
  const vendorMessage = vendorText(b.error) ?? vendorText(b.message) ?? (body === undefined ? vendorText(reply.text) : undefined);
  let code = codeOverride ?? codeForStatus(reply.status);
  if (b.status === 'NOT_AUTHORIZED') code = 'FORBIDDEN';
  const what =
    code === 'AUTH'
      ? 'API key missing or not accepted'
      : code === 'FORBIDDEN'
        ? 'plan does not cover this data'
        : code === 'RATE_LIMITED'
          ? 'rate limit exceeded'
          : code === 'UNAVAILABLE'
            ? 'server error'
            : 'request refused';
  const text = `massive: GET ${path}: HTTP ${reply.status} ${what}${vendorMessage ? `: ${vendorMessage}` : ''}`;
  return new SourceError('massive', code, text, { status: reply.status, vendorMessage });
}

/** A 200 whose `status` is not a success value (Massive sends NOT_AUTHORIZED/ERROR in the body). */
export function massiveBodyError(body: unknown, reply: VendorReply, path: string): SourceError | undefined {
  const status = (body as { status?: unknown }).status;
  if (typeof status === 'string' && MASSIVE_OK_STATUSES.has(status)) return undefined;
  if (status === 'NOT_AUTHORIZED' || status === 'ERROR') return massiveError(reply, body, path, 'BAD_REQUEST');
  return new SourceError('massive', 'MALFORMED', `massive: GET ${path}: unexpected status ${JSON.stringify(status ?? null)}`, {
    status: reply.status,
  });
}
