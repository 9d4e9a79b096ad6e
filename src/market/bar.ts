/** barkeep's one bar type. Vendor formats are converted to it in src/sources. */
import type { BarSize } from './bar-size.ts';

export const BAR_SOURCES = ['massive', 'alpaca', 'ibkr-realtime', 'ibkr-historical', 'sim'] as const;
export type BarSource = (typeof BAR_SOURCES)[number];

/** Small stable integer per source, used in the binary bar layout. */
export const BAR_SOURCE_CODE: Record<BarSource, number> = {
  massive: 1,
  alpaca: 2,
  'ibkr-realtime': 3,
  'ibkr-historical': 4,
  sim: 5,
};

export function isBarSource(value: unknown): value is BarSource {
  return typeof value === 'string' && (BAR_SOURCES as readonly string[]).includes(value);
}

/** A bar's prices and volume over its interval: what every bar shape (vendor, cache view, IB 5 s) has. */
export interface Ohlcv {
  /** Open time of the bar, UTC epoch ms. */
  start: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** The trade statistics a bar may carry beside its prices. */
export interface BarStats {
  /** Volume-weighted average price; NaN when the source does not give it. */
  vwap: number;
  /** Number of trades; -1 when the source does not give it. */
  trades: number;
}

/** Same prices, volume and trade statistics (an unknown vwap, NaN, equals an unknown one). */
export function sameValues(a: Ohlcv & BarStats, b: Ohlcv & BarStats): boolean {
  return (
    a.open === b.open &&
    a.high === b.high &&
    a.low === b.low &&
    a.close === b.close &&
    a.volume === b.volume &&
    a.trades === b.trades &&
    (a.vwap === b.vwap || (Number.isNaN(a.vwap) && Number.isNaN(b.vwap)))
  );
}

export interface Bar extends Ohlcv, BarStats {
  symbol: string;
  barSize: BarSize;
  source: BarSource;
  /** When barkeep received the bar, UTC epoch ms (from the injected clock). */
  receivedAt: number;
}

/** Symbols as the vendors write them: upper case letters, digits, and one class separator (BRK.B). */
const SYMBOL_RE = /^[A-Z][A-Z0-9]{0,9}(?:[.-][A-Z0-9]{1,4})?$/;

export function isValidSymbol(value: unknown): value is string {
  return typeof value === 'string' && SYMBOL_RE.test(value);
}
