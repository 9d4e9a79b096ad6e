/**
 * Collection with a source that serves many symbols per request (Alpaca's
 * `/v2/stocks/bars?symbols=`): symbols whose spans start within the refetch window of each other
 * share a request (a symbol new to the cache, backfilling days, gets its own), at most
 * ALPACA_SYMBOLS_PER_REQUEST per request. One request instead of one per symbol is what lets a
 * cycle over hundreds of symbols fit the free plan's 200 requests per minute.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { ALPACA_SYMBOLS_PER_REQUEST } from '../../sources/alpaca/multi-bars.ts';
import type { HistoricalBarSource } from '../../sources/types.ts';

export interface MultiSymbolSource extends HistoricalBarSource {
  fetchBarsMulti(symbols: string[], barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Map<string, Bar[]>>;
}

export function isMultiSymbol(s: HistoricalBarSource): s is MultiSymbolSource {
  return typeof (s as Partial<MultiSymbolSource>).fetchBarsMulti === 'function';
}

/** Symbols one request of this source serves. */
export function symbolsPerRequest(s: HistoricalBarSource): number {
  return isMultiSymbol(s) ? ALPACA_SYMBOLS_PER_REQUEST : 1;
}

export interface Span {
  symbol: string;
  /** The symbol's coverage before this cycle. */
  covered: number;
  /** Where this cycle asks from. */
  from: number;
}

/** Spans grouped into requests: sorted by `from`, a group's spans within `windowMs` of its first. */
export function groupSpans(spans: Span[], windowMs: number, maxPerGroup = ALPACA_SYMBOLS_PER_REQUEST): Span[][] {
  const sorted = [...spans].sort((a, b) => a.from - b.from);
  const groups: Span[][] = [];
  for (const s of sorted) {
    const g = groups[groups.length - 1];
    if (g && s.from - g[0].from <= windowMs && g.length < maxPerGroup) g.push(s);
    else groups.push([s]);
  }
  return groups;
}
