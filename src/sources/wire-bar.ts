/**
 * The bar fields Massive and Alpaca share on the wire: `o h l c v` and, when sent, `vw` (VWAP) and
 * `n` (trade count), in REST pages and stream messages alike (docs/market-data.md). What each vendor
 * writes differently (the start `t` or `s`, the envelope) stays in its wire.ts and stream.ts.
 */
import type { Bar, BarSource } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';

export interface WireOhlcv {
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  vw?: unknown;
  n?: unknown;
}

export function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * Why a REST bar's `o h l c v vw n` are not a sane bar, or undefined when they are. Adjusted prices
 * are rounded, so open and close may stand a hair outside high..low.
 */
export function ohlcvProblem(r: Record<string, unknown>): string | undefined {
  const { o, h, l, c, v, vw, n } = r;
  if (!isNum(o) || !isNum(h) || !isNum(l) || !isNum(c)) return 'o/h/l/c missing or not numbers';
  if (!(l > 0)) return 'low is not positive';
  if (h < l) return 'high < low';
  const slack = Math.max(1e-4, h * 1e-7);
  if (o > h + slack || o < l - slack || c > h + slack || c < l - slack) return 'open/close outside high..low';
  if (!isNum(v) || v < 0) return 'v missing or negative';
  if (vw !== undefined && vw !== null && !isNum(vw)) return 'vw is not a number';
  if (n !== undefined && n !== null && (!isNum(n) || n < 0)) return 'n is not a count';
  return undefined;
}

/** True when a streamed bar's prices and volume hold together (streams get no rounding slack). */
export function pricesConsistent(o: number, h: number, l: number, c: number, v: number): boolean {
  return l > 0 && h >= l && o <= h && o >= l && c <= h && c >= l && v >= 0;
}

/** Our Bar from checked wire fields: NaN VWAP and -1 trades where the vendor sent none. */
export function wireBar(a: WireOhlcv, symbol: string, barSize: BarSize, start: number, source: BarSource, receivedAt: number): Bar {
  return {
    symbol,
    barSize,
    start,
    open: a.o,
    high: a.h,
    low: a.l,
    close: a.c,
    volume: a.v,
    vwap: isNum(a.vw) ? a.vw : NaN,
    trades: isNum(a.n) ? a.n : -1,
    source,
    receivedAt,
  };
}
