/**
 * Alpaca Market Data v2 bars, read into our Bar. See docs/market-data.md, "Alpaca market data v2": historical bars, plans and errors.
 * Pure functions: no I/O.
 */
import type { Bar } from '../../market/bar.ts';
import { type BarSize, barSizeMs } from '../../market/bar-size.ts';
import { codeForStatus, type VendorReply, vendorText } from '../http.ts';
import { SourceError } from '../types.ts';
import { ohlcvProblem, type WireOhlcv, wireBar } from '../wire-bar.ts';

/**
 * Feeds a source may be configured with. `delayed_sip` exists only on latest endpoints and the
 * stream; for history the adapter asks `sip` for data at least 15 minutes old, which free plans may.
 */
export const ALPACA_FEEDS = ['iex', 'sip', 'delayed_sip', 'otc', 'boats'] as const;
export type AlpacaFeed = (typeof ALPACA_FEEDS)[number];

export function isAlpacaFeed(value: unknown): value is AlpacaFeed {
  return typeof value === 'string' && (ALPACA_FEEDS as readonly string[]).includes(value);
}

/** Our bar sizes are already Alpaca's `timeframe` notation. */
export function alpacaTimeframe(size: BarSize): string {
  return size;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

export interface BarsPage {
  bars: Bar[];
  malformed: number;
  firstProblem?: string;
  nextPageToken?: string;
}

/**
 * Reads one `/v2/stocks/{symbol}/bars` page. Bars outside from <= t < to are dropped (Alpaca's
 * `end` is inclusive); bars that are not sane are skipped and counted. Throws MALFORMED when the
 * envelope cannot be read.
 */
export function parseBarsPage(body: unknown, symbol: string, barSize: BarSize, from: number, to: number, receivedAt: number): BarsPage {
  const env = body as { bars?: unknown; next_page_token?: unknown };
  const list = env.bars;
  if (list !== undefined && list !== null && !Array.isArray(list)) {
    throw new SourceError('alpaca', 'MALFORMED', 'alpaca: bars response `bars` is not an array');
  }
  const token = env.next_page_token;
  if (token !== undefined && token !== null && typeof token !== 'string') {
    throw new SourceError('alpaca', 'MALFORMED', 'alpaca: `next_page_token` is not a string');
  }
  const read = readBarList(list ?? [], symbol, barSize, from, to, receivedAt);
  return { ...read, nextPageToken: token || undefined };
}

/** Reads one symbol's list of wire bars: sane bars with from <= t < to kept, the rest counted. */
export function readBarList(
  list: unknown[],
  symbol: string,
  barSize: BarSize,
  from: number,
  to: number,
  receivedAt: number,
  where = 'bars',
): { bars: Bar[]; malformed: number; firstProblem?: string } {
  const bars: Bar[] = [];
  let malformed = 0;
  let firstProblem: string | undefined;
  const alignMs = barSize !== '1Day' ? barSizeMs(barSize) : 0;
  for (let i = 0; i < list.length; i++) {
    const r = list[i] as Record<string, unknown> | null;
    const start = barStart(r);
    const problem = start === undefined ? 't is not an RFC-3339 time' : barProblem(r!, start, alignMs);
    if (problem) {
      malformed++;
      firstProblem ??= `${where}[${i}]: ${problem}`;
      continue;
    }
    const s = start!;
    if (s < from || s >= to) continue;
    bars.push(wireBar(r as unknown as WireOhlcv, symbol, barSize, s, 'alpaca', receivedAt));
  }
  return { bars, malformed, firstProblem };
}

function barStart(r: Record<string, unknown> | null): number | undefined {
  if (r === null || typeof r !== 'object') return undefined;
  const t = r.t;
  if (typeof t !== 'string' || !RFC3339.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

function barProblem(r: Record<string, unknown>, start: number, alignMs: number): string | undefined {
  if (alignMs > 0 && start % alignMs !== 0) return `t ${String(r.t)} is not aligned to the bar size`;
  return ohlcvProblem(r);
}

/** Maps an Alpaca error reply to a SourceError; the vendor text is in `message`. */
export function alpacaError(reply: VendorReply, body: unknown, path: string): SourceError {
  const b = (body ?? {}) as { message?: unknown; code?: unknown };
  const vendorMessage = vendorText(b.message) ?? (body === undefined ? vendorText(reply.text) : undefined);
  const code = codeForStatus(reply.status);
  const what =
    code === 'AUTH'
      ? 'credentials missing or not accepted'
      : code === 'FORBIDDEN'
        ? 'credentials or plan (feed) not permitted'
        : code === 'RATE_LIMITED'
          ? 'rate limit exceeded'
          : code === 'UNAVAILABLE'
            ? 'server error'
            : 'request refused';
  const vendorCode = typeof b.code === 'number' ? ` [${b.code}]` : '';
  const text = `alpaca: GET ${path}: HTTP ${reply.status} ${what}${vendorMessage ? `: ${vendorMessage}` : ''}${vendorCode}`;
  return new SourceError('alpaca', code, text, { status: reply.status, vendorMessage });
}
