/** Bar sizes in the seed's notation, and their lengths. */

export const BAR_SIZES = ['1Min', '5Min', '15Min', '30Min', '1Hour', '1Day'] as const;
export type BarSize = (typeof BAR_SIZES)[number];

const MINUTE = 60_000;
const LENGTH_MS: Record<BarSize, number> = {
  '1Min': MINUTE,
  '5Min': 5 * MINUTE,
  '15Min': 15 * MINUTE,
  '30Min': 30 * MINUTE,
  '1Hour': 60 * MINUTE,
  '1Day': 24 * 60 * MINUTE,
};

/** Small stable integer per bar size, used in binary keys. */
export const BAR_SIZE_CODE: Record<BarSize, number> = {
  '1Min': 1,
  '5Min': 2,
  '15Min': 3,
  '30Min': 4,
  '1Hour': 5,
  '1Day': 6,
};

export function isBarSize(value: unknown): value is BarSize {
  return typeof value === 'string' && (BAR_SIZES as readonly string[]).includes(value);
}

/** Nominal length of a bar. A `1Day` bar is 24 h here; session-aware code uses the calendar. */
export function barSizeMs(size: BarSize): number {
  return LENGTH_MS[size];
}

/**
 * Start of the intraday bar that contains `ts` (UTC epoch ms). Intraday bars align to the UTC
 * epoch, which for every size up to an hour is the same as aligning to New York time.
 * Not for `1Day`: daily bars start at midnight New York time (see MarketCalendar).
 */
export function floorToBar(ts: number, size: BarSize): number {
  const len = LENGTH_MS[size];
  return ts - (((ts % len) + len) % len);
}
