/**
 * The bar key layout: `symbol (ASCII) | 0x00 | bar size code | start (u64 big-endian)`.
 *
 * Why this layout: LMDB sorts keys bytewise, so all bars of one (symbol, bar size) sit next to each
 * other in time order, and a range or latest-N read is one cursor walk over adjacent leaf pages.
 * The 0x00 separator sorts a symbol before every longer symbol it prefixes (QQ < QQQ < QQQ.A),
 * so prefixes never interleave. Starts are validated to be non-negative integers below 2^53.
 *
 * Hot reads reuse one key buffer per (symbol, bar size) and rewrite only its last 8 bytes, so a
 * point read allocates nothing (see KeyBuffers).
 */
import { BAR_SIZE_CODE, type BarSize } from '../market/bar-size.ts';

const TWO_32 = 4294967296;
/** Largest start a key can hold exactly (also used as "no upper bound"). */
export const MAX_START = Number.MAX_SAFE_INTEGER;

export function writeStart(buf: Uint8Array, offset: number, start: number): void {
  const hi = Math.floor(start / TWO_32);
  const lo = start - hi * TWO_32;
  buf[offset] = hi >>> 24;
  buf[offset + 1] = (hi >>> 16) & 0xff;
  buf[offset + 2] = (hi >>> 8) & 0xff;
  buf[offset + 3] = hi & 0xff;
  buf[offset + 4] = lo >>> 24;
  buf[offset + 5] = (lo >>> 16) & 0xff;
  buf[offset + 6] = (lo >>> 8) & 0xff;
  buf[offset + 7] = lo & 0xff;
}

export function readStart(buf: Uint8Array, offset: number): number {
  const hi = ((buf[offset] << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
  const lo = ((buf[offset + 4] << 24) | (buf[offset + 5] << 16) | (buf[offset + 6] << 8) | buf[offset + 7]) >>> 0;
  return hi * TWO_32 + lo;
}

/** `symbol | 0x00 | size code`: the key of the (symbol, size) series in the heads db, and the bars' prefix. */
export function seriesPrefix(symbol: string, size: BarSize): Buffer {
  const buf = Buffer.allocUnsafe(symbol.length + 2);
  buf.write(symbol, 0, 'latin1');
  buf[symbol.length] = 0;
  buf[symbol.length + 1] = BAR_SIZE_CODE[size];
  return buf;
}

/** A fresh bar key (for writes, whose buffers lmdb may hold until commit). */
export function barKey(symbol: string, size: BarSize, start: number): Buffer {
  const buf = Buffer.allocUnsafe(symbol.length + 10);
  buf.write(symbol, 0, 'latin1');
  buf[symbol.length] = 0;
  buf[symbol.length + 1] = BAR_SIZE_CODE[size];
  writeStart(buf, symbol.length + 2, start);
  return buf;
}

/** Splits a heads-db key (`symbol | 0x00 | size code`) back into its parts. */
export function parseSeriesKey(key: Uint8Array): { symbol: string; sizeCode: number } {
  const sep = key.indexOf(0);
  return { symbol: Buffer.from(key.buffer, key.byteOffset, sep).toString('latin1'), sizeCode: key[sep + 1] };
}

/**
 * lmdb-js key encoder for the bars db: keys go in as ready-made buffers, and come out of cursors
 * as the bar's start (a number), so a range walk never allocates a key buffer.
 */
export const barKeyEncoder = {
  writeKey(key: Uint8Array, target: Uint8Array, position: number): number {
    target.set(key, position);
    return position + key.length;
  },
  readKey(buf: Uint8Array, _start: number, end: number): number {
    return readStart(buf, end - 8);
  },
};

/** Scratch keys of one (symbol, size) series: two bar keys (a range needs both ends) and its heads key. */
export interface SeriesKeys {
  readonly a: Buffer;
  readonly b: Buffer;
  readonly head: Buffer;
}

/** Writes `start` into a scratch bar key and returns it. */
export function withStart(key: Buffer, start: number): Buffer {
  writeStart(key, key.length - 8, start);
  return key;
}

/**
 * Reusable key buffers per (symbol, size), for reads: a Map lookup instead of an allocation per
 * read. The map only ever holds series whose symbol passed validation, and at most `maxSymbols`
 * symbols: past that the oldest entry is dropped (a read of a dropped symbol re-creates its keys),
 * so reads of many distinct symbols (e.g. GET /bars for symbols nobody collects) keep no memory.
 */
export class KeyBuffers {
  private readonly bySymbol = new Map<string, (SeriesKeys | undefined)[]>();
  constructor(readonly maxSymbols = 1024) {}

  /** Symbols currently holding key buffers (bounded by maxSymbols). */
  get size(): number {
    return this.bySymbol.size;
  }

  get(symbol: string, size: BarSize): SeriesKeys | undefined {
    const bySize = this.bySymbol.get(symbol);
    return bySize === undefined ? undefined : bySize[BAR_SIZE_CODE[size]];
  }

  /** Adds the series; the caller has validated symbol and size. */
  add(symbol: string, size: BarSize): SeriesKeys {
    let bySize = this.bySymbol.get(symbol);
    if (bySize === undefined) {
      if (this.bySymbol.size >= this.maxSymbols) this.bySymbol.delete(this.bySymbol.keys().next().value!);
      bySize = [];
      this.bySymbol.set(symbol, bySize);
    }
    const keys: SeriesKeys = { a: barKey(symbol, size, 0), b: barKey(symbol, size, 0), head: seriesPrefix(symbol, size) };
    bySize[BAR_SIZE_CODE[size]] = keys;
    return keys;
  }
}
