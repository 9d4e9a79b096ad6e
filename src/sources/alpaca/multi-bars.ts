/**
 * Alpaca's multi-symbol bars endpoint, `GET /v2/stocks/bars?symbols=A,B,...` (docs/market-data.md,
 * Alpaca historical bars): one request serves many symbols, so a cycle over hundreds of symbols costs
 * a few requests of the 200-per-minute free budget instead of one each.
 *
 * The envelope is `{"bars": {"SYM": [bar...]}, "next_page_token": ...}`. `limit` counts all symbols
 * together and results come ordered by symbol, then time, so one symbol's bars can span pages and a
 * page can hold only one symbol: every page is read and each symbol's bars appended in order.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { SourceError } from '../types.ts';
import { readBarList } from './wire.ts';

/** Most symbols per request: keeps the URL short (Alpaca accepts long lists; proxies may not). */
export const ALPACA_SYMBOLS_PER_REQUEST = 200;

export interface MultiBarsPage {
  bars: Map<string, Bar[]>;
  malformed: number;
  firstProblem?: string;
  nextPageToken?: string;
}

/** Reads one page of the multi-symbol envelope; symbols not asked for are ignored. */
export function parseMultiBarsPage(
  body: unknown,
  asked: ReadonlySet<string>,
  barSize: BarSize,
  from: number,
  to: number,
  receivedAt: number,
): MultiBarsPage {
  const env = (body ?? {}) as { bars?: unknown; next_page_token?: unknown };
  const map = env.bars;
  if (map !== undefined && map !== null && (typeof map !== 'object' || Array.isArray(map))) {
    throw new SourceError('alpaca', 'MALFORMED', 'alpaca: multi-symbol bars response `bars` is not an object of symbols');
  }
  const token = env.next_page_token;
  if (token !== undefined && token !== null && typeof token !== 'string') {
    throw new SourceError('alpaca', 'MALFORMED', 'alpaca: `next_page_token` is not a string');
  }
  const bars = new Map<string, Bar[]>();
  let malformed = 0;
  let firstProblem: string | undefined;
  for (const [symbol, list] of Object.entries((map ?? {}) as Record<string, unknown>)) {
    if (!asked.has(symbol)) continue;
    if (list === null) continue;
    if (!Array.isArray(list)) {
      malformed++;
      firstProblem ??= `bars.${symbol}: not an array`;
      continue;
    }
    const read = readBarList(list, symbol, barSize, from, to, receivedAt, `bars.${symbol}`);
    malformed += read.malformed;
    firstProblem ??= read.firstProblem;
    bars.set(symbol, read.bars);
  }
  return { bars, malformed, firstProblem, nextPageToken: token || undefined };
}
