/**
 * What the bar store refuses, and why. A refused bar is never written; putMany refuses the whole
 * batch when any bar in it is bad, naming the bar's index.
 */
import { isBarSource, isValidSymbol, type Bar } from '../market/bar.ts';
import { barSizeMs, floorToBar, isBarSize } from '../market/bar-size.ts';
import { BarkeepError } from '../errors.ts';
import type { BarValidationCode } from './errors.ts';

export type { BarValidationCode } from './errors.ts';

export class BarValidationError extends BarkeepError<BarValidationCode> {
  /** The offending field of the bar (`symbol`, `high`, ...). */
  declare readonly field: string;
  /** Position of the bar in a putMany batch; undefined for put. */
  readonly index: number | undefined;

  constructor(code: BarValidationCode, field: string, reason: string, index?: number) {
    super(code, `${index === undefined ? 'bar' : `bar #${index}`} refused: ${field} ${reason}`, { field });
    this.index = index;
  }
}

const MAX_INT32 = 2147483647;

let failIndex: number | undefined;

function fail(code: BarValidationCode, field: string, reason: string): never {
  throw new BarValidationError(code, field, reason, failIndex);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  return String(value);
}

/** Throws BarValidationError for the first thing wrong with `bar`. */
export function validateBar(bar: Bar, index?: number): void {
  // One module-level thrower, not a closure per call: this runs for every bar written.
  failIndex = index;
  if (bar === null || typeof bar !== 'object') fail('BAD_SYMBOL', 'symbol', 'is missing: the bar is not an object');
  if (!isValidSymbol(bar.symbol)) {
    fail('BAD_SYMBOL', 'symbol', `${describe(bar.symbol)} is not a symbol (upper-case letters and digits, e.g. QQQ or BRK.B)`);
  }
  if (!isBarSize(bar.barSize)) fail('BAD_BAR_SIZE', 'barSize', `${describe(bar.barSize)} is not a bar size (1Min, 5Min, 15Min, 30Min, 1Hour, 1Day)`);
  if (!isBarSource(bar.source)) fail('BAD_SOURCE', 'source', `${describe(bar.source)} is not a bar source`);
  const start = bar.start;
  if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 0) {
    fail('BAD_TIME', 'start', `${describe(start)} is not a non-negative integer epoch ms`);
  }
  if (bar.barSize !== '1Day' && floorToBar(start, bar.barSize) !== start) {
    fail('BAD_TIME', 'start', `${new Date(start).toISOString()} is not aligned to a ${bar.barSize} boundary (${barSizeMs(bar.barSize)} ms)`);
  }
  const received = bar.receivedAt;
  if (typeof received !== 'number' || !Number.isFinite(received) || received < 0) {
    fail('BAD_TIME', 'receivedAt', `${describe(received)} is not a non-negative epoch ms`);
  }
  for (const field of ['open', 'high', 'low', 'close'] as const) {
    const v = bar[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail('BAD_PRICE', field, `${describe(v)} is not a positive finite price`);
  }
  if (typeof bar.vwap !== 'number' || (!Number.isNaN(bar.vwap) && (!Number.isFinite(bar.vwap) || bar.vwap <= 0))) {
    fail('BAD_PRICE', 'vwap', `${describe(bar.vwap)} is not a positive finite price (NaN when the source gives none)`);
  }
  if (typeof bar.volume !== 'number' || !Number.isFinite(bar.volume) || bar.volume < 0) {
    fail('BAD_VOLUME', 'volume', `${describe(bar.volume)} is not a non-negative finite volume`);
  }
  if (typeof bar.trades !== 'number' || !Number.isInteger(bar.trades) || bar.trades < -1 || bar.trades > MAX_INT32) {
    fail('BAD_VOLUME', 'trades', `${describe(bar.trades)} is not a trade count (a non-negative integer, -1 when the source gives none)`);
  }
  if (bar.high < bar.low) fail('BAD_RANGE', 'high', `${bar.high} is below low ${bar.low}`);
  if (bar.open > bar.high || bar.open < bar.low) fail('BAD_RANGE', 'open', `${bar.open} is outside low..high ${bar.low}..${bar.high}`);
  if (bar.close > bar.high || bar.close < bar.low) fail('BAD_RANGE', 'close', `${bar.close} is outside low..high ${bar.low}..${bar.high}`);
}
