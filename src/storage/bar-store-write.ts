/**
 * The bar cache's write transaction (bar-store.ts): the cross-source rule applied to a batch of
 * encoded bars inside one LMDB write transaction, and the divergence events it finds.
 *
 * Runs inside `db.transaction()`: its reads see the transaction's own state, and LMDB serializes
 * writers across threads and processes, so the read-compare-write cannot race.
 */
import { channel } from 'node:diagnostics_channel';
import type { Database } from 'lmdb';
import type { BarSource } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import { BAR_VALUE_BYTES, createBarView, decodeIntoView, maxPriceGap, sourceCodeAt, sourceOfCode } from './bar-codec.ts';
import { readStart, writeStart } from './bar-key.ts';
import { DIVERGENCE_THRESHOLD, type SourcePrecedence } from './source-precedence.ts';

export interface DivergenceEvent {
  symbol: string;
  barSize: BarSize;
  start: number;
  stored: BarSource;
  incoming: BarSource;
  /** Greatest relative open/high/low/close difference. */
  gap: number;
}

/** Published for every divergence; costs nothing without subscribers. */
export const divergenceChannel = channel('barkeep:storage:divergence');

const NO_OVERWRITE = { noOverwrite: true } as const;

type Bytes = Uint8Array;

interface SeriesHead {
  prefix: Buffer;
  start: number;
}

/** A batch encoded outside the transaction: key, series id and the 64-byte value of each bar. */
export interface EncodedBatch {
  keys: Buffer[];
  /** `symbol\u0000barSize` per bar. */
  series: string[];
  values: Buffer;
  /** When given: filled with the source code the cache holds for each key after the write. */
  held?: Uint8Array;
}

export interface BatchOutcome {
  written: number;
  corrections: number;
  shadowed: number;
  divergent: number;
  events: DivergenceEvent[];
}

/** In the write transaction: writes each bar the precedence lets in, and moves the series heads. */
export function applyBatch(db: Database<Bytes, Bytes>, heads: Database<Bytes, Bytes>, precedence: SourcePrecedence, batch: EncodedBatch): BatchOutcome {
  const { keys, values, series, held } = batch;
  const value = Buffer.alloc(BAR_VALUE_BYTES);
  const stored = createBarView();
  const incoming = createBarView();
  const headBytes = Buffer.alloc(8);
  const newHeads = new Map<string, SeriesHead>();
  const events: DivergenceEvent[] = [];
  let written = 0;
  let corrections = 0;
  let shadowed = 0;
  let divergent = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const off = i * BAR_VALUE_BYTES;
    values.copy(value, 0, off, off + BAR_VALUE_BYTES);
    const start = readStart(key, key.length - 8);
    const incomingCode = sourceCodeAt(value);
    if (held !== undefined) held[i] = incomingCode;
    // One B-tree descent for the common case, a new key: insert unless it exists.
    if (!insertIfAbsent(db, key, value)) {
      const existing = db.getBinaryFast(key)!;
      const storedCode = sourceCodeAt(existing);
      if (storedCode === incomingCode) {
        corrections++;
      } else {
        decodeIntoView(existing, start, stored);
        decodeIntoView(value, start, incoming);
        const gap = maxPriceGap(stored, incoming);
        if (gap > DIVERGENCE_THRESHOLD) {
          divergent++;
          if (divergenceChannel.hasSubscribers) {
            const [symbol, barSize] = series[i].split('\u0000') as [string, BarSize];
            events.push({ symbol, barSize, start, stored: sourceOfCode(storedCode), incoming: sourceOfCode(incomingCode), gap });
          }
        }
        if (!precedence.replaces(incomingCode, storedCode)) {
          shadowed++;
          if (held !== undefined) held[i] = storedCode;
          continue;
        }
      }
      db.putSync(key, value);
    }
    written++;
    const head = newHeads.get(series[i]);
    if (head === undefined) newHeads.set(series[i], { prefix: key.subarray(0, key.length - 8), start });
    else if (start > head.start) head.start = start;
  }
  for (const head of newHeads.values()) {
    const current = heads.getBinaryFast(head.prefix);
    if (current === undefined || readStart(current, 0) < head.start) {
      writeStart(headBytes, 0, head.start);
      heads.putSync(head.prefix, headBytes);
    }
  }
  return { written, corrections, shadowed, divergent, events };
}

/** In a write transaction: puts unless the key exists; true when it put (lmdb-js documents the boolean; its typings say void). */
function insertIfAbsent(db: Database<Bytes, Bytes>, key: Bytes, value: Bytes): boolean {
  return (db.putSync(key, value, NO_OVERWRITE) as unknown as boolean) === true;
}
