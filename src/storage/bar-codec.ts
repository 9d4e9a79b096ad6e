/**
 * The fixed binary layout of one bar value (64 bytes, little-endian):
 *
 *   0  u8   layout version (1)          8  f64 open       40 f64 volume
 *   1  u8   source (BAR_SOURCE_CODE)   16  f64 high       48 f64 vwap (NaN: not given)
 *   2  u16  reserved (0)               24  f64 low        56 f64 receivedAt (epoch ms)
 *   4  i32  trades (-1: not given)     32  f64 close
 *
 * Symbol, bar size and start live in the key (bar-key.ts). Decoding reads through a DataView that
 * is cached per underlying ArrayBuffer, so decoding lmdb's reusable read buffer allocates nothing.
 */
import { BAR_SOURCES, BAR_SOURCE_CODE, type Bar, type BarSource } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import type { BarColumns, BarView } from './types.ts';

export const BAR_VALUE_BYTES = 64;
const LAYOUT_VERSION = 1;

const OFF_SOURCE = 1;
const OFF_TRADES = 4;
const OFF_OPEN = 8;
const OFF_HIGH = 16;
const OFF_LOW = 24;
const OFF_CLOSE = 32;
const OFF_VOLUME = 40;
const OFF_VWAP = 48;
const OFF_RECEIVED = 56;

const SOURCE_BY_CODE: (BarSource | undefined)[] = [];
for (const s of BAR_SOURCES) SOURCE_BY_CODE[BAR_SOURCE_CODE[s]] = s;

export function sourceOfCode(code: number): BarSource {
  const source = SOURCE_BY_CODE[code];
  if (source === undefined) throw new Error(`unknown bar source code ${code} in the bar store`);
  return source;
}

let cachedBuffer: ArrayBufferLike | undefined;
let cachedView: DataView | undefined;

/** A DataView over the whole ArrayBuffer behind `buf` (cached: lmdb hands back the same one). */
function viewOf(buf: Uint8Array): DataView {
  if (buf.buffer !== cachedBuffer) {
    cachedBuffer = buf.buffer;
    cachedView = new DataView(buf.buffer);
  }
  return cachedView!;
}

/** Writes `bar` (already validated) at `offset` of `target`. */
export function encodeBar(bar: Bar, target: Uint8Array, offset: number): void {
  const dv = viewOf(target);
  const o = target.byteOffset + offset;
  dv.setUint8(o, LAYOUT_VERSION);
  dv.setUint8(o + OFF_SOURCE, BAR_SOURCE_CODE[bar.source]);
  dv.setUint16(o + 2, 0, true);
  dv.setInt32(o + OFF_TRADES, bar.trades, true);
  dv.setFloat64(o + OFF_OPEN, bar.open, true);
  dv.setFloat64(o + OFF_HIGH, bar.high, true);
  dv.setFloat64(o + OFF_LOW, bar.low, true);
  dv.setFloat64(o + OFF_CLOSE, bar.close, true);
  dv.setFloat64(o + OFF_VOLUME, bar.volume, true);
  dv.setFloat64(o + OFF_VWAP, bar.vwap, true);
  dv.setFloat64(o + OFF_RECEIVED, bar.receivedAt, true);
}

export function sourceCodeAt(buf: Uint8Array): number {
  return buf[OFF_SOURCE];
}

export function decodeIntoView(buf: Uint8Array, start: number, view: BarView): void {
  const dv = viewOf(buf);
  const o = buf.byteOffset;
  view.start = start;
  view.open = dv.getFloat64(o + OFF_OPEN, true);
  view.high = dv.getFloat64(o + OFF_HIGH, true);
  view.low = dv.getFloat64(o + OFF_LOW, true);
  view.close = dv.getFloat64(o + OFF_CLOSE, true);
  view.volume = dv.getFloat64(o + OFF_VOLUME, true);
  view.vwap = dv.getFloat64(o + OFF_VWAP, true);
  view.trades = dv.getInt32(o + OFF_TRADES, true);
  view.sourceCode = buf[OFF_SOURCE];
  view.receivedAt = dv.getFloat64(o + OFF_RECEIVED, true);
}

export function decodeIntoColumns(buf: Uint8Array, start: number, out: BarColumns, row: number): void {
  const dv = viewOf(buf);
  const o = buf.byteOffset;
  out.start[row] = start;
  out.open[row] = dv.getFloat64(o + OFF_OPEN, true);
  out.high[row] = dv.getFloat64(o + OFF_HIGH, true);
  out.low[row] = dv.getFloat64(o + OFF_LOW, true);
  out.close[row] = dv.getFloat64(o + OFF_CLOSE, true);
  out.volume[row] = dv.getFloat64(o + OFF_VOLUME, true);
  out.vwap[row] = dv.getFloat64(o + OFF_VWAP, true);
  out.trades[row] = dv.getInt32(o + OFF_TRADES, true);
  out.sourceCode[row] = buf[OFF_SOURCE];
  out.receivedAt[row] = dv.getFloat64(o + OFF_RECEIVED, true);
}

export function decodeBar(buf: Uint8Array, symbol: string, barSize: BarSize, start: number): Bar {
  const dv = viewOf(buf);
  const o = buf.byteOffset;
  return {
    symbol,
    barSize,
    start,
    open: dv.getFloat64(o + OFF_OPEN, true),
    high: dv.getFloat64(o + OFF_HIGH, true),
    low: dv.getFloat64(o + OFF_LOW, true),
    close: dv.getFloat64(o + OFF_CLOSE, true),
    volume: dv.getFloat64(o + OFF_VOLUME, true),
    vwap: dv.getFloat64(o + OFF_VWAP, true),
    trades: dv.getInt32(o + OFF_TRADES, true),
    source: sourceOfCode(buf[OFF_SOURCE]),
    receivedAt: dv.getFloat64(o + OFF_RECEIVED, true),
  };
}

/** Greatest relative difference in open/high/low/close between two bars. */
export function maxPriceGap(a: BarView, b: BarView): number {
  return Math.max(relativeGap(a.open, b.open), relativeGap(a.high, b.high), relativeGap(a.low, b.low), relativeGap(a.close, b.close));
}

function relativeGap(x: number, y: number): number {
  return x === y ? 0 : Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y));
}

export function createBarColumns(capacity: number): BarColumns {
  if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
  return {
    capacity,
    start: new Float64Array(capacity),
    open: new Float64Array(capacity),
    high: new Float64Array(capacity),
    low: new Float64Array(capacity),
    close: new Float64Array(capacity),
    volume: new Float64Array(capacity),
    vwap: new Float64Array(capacity),
    trades: new Float64Array(capacity),
    receivedAt: new Float64Array(capacity),
    sourceCode: new Uint8Array(capacity),
  };
}

export function createBarView(): BarView {
  return { start: 0, open: 0, high: 0, low: 0, close: 0, volume: 0, vwap: 0, trades: 0, sourceCode: 0, receivedAt: 0 };
}
