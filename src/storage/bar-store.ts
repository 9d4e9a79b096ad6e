/**
 * BarStore: the bar cache, one bar per (symbol, bar size, start), in LMDB.
 *
 * Design decisions
 * - Layout: keys `symbol|0x00|size|start(u64 BE)` (bar-key.ts) keep a series contiguous and in
 *   time order; values are a fixed 64-byte record (bar-codec.ts). A second db, `bar-heads`, maps
 *   each series to its newest start, so `latestInto` is two point reads, no cursor.
 * - One bar per key: the best one. Sources have a precedence (default massive > ibkr-historical >
 *   ibkr-realtime > alpaca > sim; `sourcePrecedence` option). A bar from the source that already
 *   holds the key replaces it (a vendor's correction; counted `corrections`). A bar from a
 *   higher-precedence source replaces it. A bar from a lower-precedence source is kept out
 *   (counted `shadowed`; nothing is written). Sources not in the list rank below all listed ones,
 *   and between themselves the first to arrive stays.
 * - Divergence: whenever a bar meets a different source's bar for its key (replacing it or being
 *   shadowed by it) and their open/high/low/close differ by more than 0.05% relative, `divergent`
 *   is counted and published on diagnostics_channel `barkeep:storage:divergence`. Volume is not
 *   compared: feeds count different trade sets.
 * - The read-compare-write of that rule runs inside the LMDB write transaction (lmdb-js
 *   `transaction()`), which LMDB serializes across threads and processes: two writers cannot race.
 * - Reads are synchronous over LMDB's memory map. `readInto`, `latestInto`, `latestNInto` and
 *   `rangeInto` allocate nothing per bar: they decode lmdb's reusable read buffer (`getBinaryFast`
 *   / a cursor) into the caller's view or columns, with cached key buffers per series. `get`,
 *   `latest`, `latestN` and `range` build Bar objects for everyone else.
 *
 * Durability: when `put`/`putMany` resolve, the transaction holding the bars is committed (visible
 * to every thread and process at their next read) and flushed to disk (fsync done: `db.flushed`).
 * A process killed at any point after that loses none of those bars, and LMDB's copy-on-write
 * pages leave the file readable whenever it is killed. `put`/`putMany` called in the same event
 * turn usually share one transaction and one flush. `putManyCommitted` resolves at the commit and
 * hands the flush over as a promise; `putManySync` commits on the calling thread and returns once
 * flushed, readable before (both for the cluster replica, whose acknowledgements wait for the flush).
 *
 * Footguns
 * - A reader's snapshot is renewed at most once per event-loop turn (lmdb-js). `readInto` and
 *   `get` retry a miss on a fresh snapshot, so a bar whose key arrived by message is always found;
 *   `latest*` can lag a write made on another thread within the same turn. Call `refresh()` first
 *   when that matters.
 * - The view/columns filled by the hot path are overwritten by the next call that gets them.
 * - `stats()` counts this thread's instance only.
 *
 * The write transaction's rule is in bar-store-write.ts, retention in bar-store-prune.ts.
 */
import { TransactionFlags, type Database, type DatabaseOptions, type RootDatabase } from 'lmdb';
import { isValidSymbol, type Bar, type BarSource } from '../market/bar.ts';
import { BAR_SIZE_CODE, isBarSize, type BarSize } from '../market/bar-size.ts';
import type { Clock, TimerHandle } from '../market/clock.ts';
import { BAR_VALUE_BYTES, decodeBar, decodeIntoColumns, decodeIntoView, encodeBar } from './bar-codec.ts';
import { KeyBuffers, MAX_START, barKey, barKeyEncoder, parseSeriesKey, readStart, withStart, type SeriesKeys } from './bar-key.ts';
import { Pruners, pruneBars } from './bar-store-prune.ts';
import { applyBatch, divergenceChannel, type BatchOutcome, type EncodedBatch } from './bar-store-write.ts';
import { BarValidationError, validateBar } from './bar-validation.ts';
import { retentionMs } from './retention.ts';
import { SourcePrecedence } from './source-precedence.ts';
import type { BarColumns, BarColumnsReader, BarReader, BarView, BarWriter, WriteResult } from './types.ts';

export interface BarStoreOptions {
  /** Days to keep, per bar size (defaults in retention.ts; Infinity keeps forever). */
  retentionDays?: Partial<Record<BarSize, number>>;
  /** Sources, best first. */
  sourcePrecedence?: readonly BarSource[];
}

export interface BarStoreStats {
  /** Bars written: new, corrected, or replacing a lower-precedence source. */
  writes: number;
  /** Of `writes`, bars that replaced the same source's bar. */
  corrections: number;
  /** Bars kept out because a higher-precedence source holds the key. */
  shadowed: number;
  /** Bars whose prices differed > 0.05% from another source's bar for the key. */
  divergent: number;
  /** Bars refused by validation (a refused batch counts all its bars: none was written). */
  rejected: number;
  /** Bars removed by retention. */
  pruned: number;
}

export { divergenceChannel, type DivergenceEvent } from './bar-store-write.ts';

type Bytes = Uint8Array;

/**
 * putManySync's transaction: abortable (a throw in the rule rolls it back), committed before
 * transactionSync returns, and begun without a sync (MDB_NOSYNC), which under overlappingSync makes
 * the commit visible first and fsyncs right after, still inside the call (lmdb-js 3.5, mdb.c).
 */
const SYNC_COMMIT_THEN_FLUSH = TransactionFlags.ABORTABLE | TransactionFlags.SYNCHRONOUS_COMMIT | TransactionFlags.NO_SYNC_FLUSH;

/** How many symbols keep their key buffers (least recently used go): room for a 5,000-symbol burst, bounded for unknown symbols. */
export const KEY_BUFFER_SYMBOLS = 8_192;
export class BarStore implements BarReader, BarWriter, BarColumnsReader {
  private readonly db: Database<Bytes, Bytes>;
  private readonly heads: Database<Bytes, Bytes>;
  /** Key buffers per series, for up to 8,192 symbols: below the working set (5,000 symbols is a
   * design target) every read would evict and allocate three buffers. */
  private readonly keys = new KeyBuffers(KEY_BUFFER_SYMBOLS);
  private readonly precedence: SourcePrecedence;
  private readonly retention: Record<BarSize, number>;
  private readonly counters: BarStoreStats = { writes: 0, corrections: 0, shadowed: 0, divergent: 0, rejected: 0, pruned: 0 };
  private readonly pruners = new Pruners();

  constructor(env: RootDatabase, opts: BarStoreOptions = {}) {
    this.precedence = new SourcePrecedence(opts.sourcePrecedence);
    this.retention = retentionMs(opts.retentionDays);
    // Values pass through as bytes: encode is the identity, and decode hands back lmdb's reusable
    // read buffer uncopied (needsStableBuffer: false), which the loops below decode at once.
    const passThrough = { encode: (v: Bytes) => v, decode: (v: Bytes) => v, needsStableBuffer: false };
    const barsOptions = { name: 'bars', keyEncoder: barKeyEncoder, encoder: passThrough };
    this.db = env.openDB<Bytes, Bytes>(barsOptions as DatabaseOptions & { name: string });
    this.heads = env.openDB<Bytes, Bytes>({ name: 'bar-heads', keyEncoding: 'binary', encoding: 'binary' });
  }

  // ---- writes ---------------------------------------------------------------------------------

  /** Writes one bar under the cross-source rule. Resolves once committed and flushed (see header). */
  put(bar: Bar): Promise<WriteResult> {
    return this.write([bar], false);
  }

  /**
   * Writes bars in one transaction; refuses all of them if any is invalid. Resolves once committed
   * and flushed. `held`, when given, is filled with the source code the cache holds for each bar's
   * key after the write (the bar's own, or a higher-precedence source's that kept it out).
   */
  putMany(bars: readonly Bar[], held?: Uint8Array): Promise<WriteResult> {
    return this.write(bars, true, held);
  }

  /**
   * putMany in two steps, for a writer that answers for durability itself (the cluster replica
   * acknowledges its stream only up to what is on disk): resolves once the transaction is committed,
   * so every reader sees the bars, with `flushed`, which resolves once they are on disk (fsync done).
   * Until then a power loss can lose them; nothing else does.
   */
  async putManyCommitted(bars: readonly Bar[]): Promise<{ result: WriteResult; flushed: Promise<void> }> {
    return this.commit(bars, true);
  }

  private async write(bars: readonly Bar[], indexed: boolean, held?: Uint8Array): Promise<WriteResult> {
    const { result, flushed } = await this.commit(bars, indexed, held);
    await flushed;
    return result;
  }

  private async commit(bars: readonly Bar[], indexed: boolean, held?: Uint8Array): Promise<{ result: WriteResult; flushed: Promise<void> }> {
    const batch = this.encode(bars, indexed, held);
    if (batch === undefined) return { result: { written: 0, shadowed: 0, divergent: 0 }, flushed: Promise.resolve() };
    const outcome = await this.db.transaction(() => applyBatch(this.db, this.heads, this.precedence, batch));
    // Taken right after the commit: resolves once this transaction (or a later one) is on disk.
    const flushed = Promise.resolve(this.db.flushed).then(() => undefined);
    return { result: this.tally(outcome), flushed };
  }

  /**
   * putMany run on the calling thread, for the cluster replica (which has a thread of its own to
   * spend): one synchronous LMDB write transaction, no hand-over to lmdb-js's writer thread and
   * back to this thread to run the cross-source rule. The commit is readable by every reader of the
   * environment as soon as its pages and meta page are written (before the fsync, as in the async
   * path: overlappingSync), and the bars are on disk (fsync done) when it returns: the caller's
   * thread waits for that fsync, so this is not for a thread that must answer meanwhile.
   */
  putManySync(bars: readonly Bar[]): WriteResult {
    const batch = this.encode(bars, true);
    if (batch === undefined) return { written: 0, shadowed: 0, divergent: 0 };
    const outcome = this.db.transactionSync(() => applyBatch(this.db, this.heads, this.precedence, batch), SYNC_COMMIT_THEN_FLUSH);
    return this.tally(outcome);
  }

  /** Validates and encodes a batch outside the transaction; undefined for an empty one. */
  private encode(bars: readonly Bar[], indexed: boolean, held?: Uint8Array): EncodedBatch | undefined {
    if (!Array.isArray(bars)) throw new TypeError('putMany takes an array of bars');
    for (let i = 0; i < bars.length; i++) {
      try {
        validateBar(bars[i], indexed ? i : undefined);
      } catch (err) {
        this.counters.rejected += bars.length;
        throw err;
      }
    }
    if (bars.length === 0) return undefined;
    // Snapshot now: the caller may reuse its bar objects before the transaction runs.
    const n = bars.length;
    const values = Buffer.alloc(n * BAR_VALUE_BYTES);
    const keys: Buffer[] = new Array(n);
    const series: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const b = bars[i];
      encodeBar(b, values, i * BAR_VALUE_BYTES);
      keys[i] = barKey(b.symbol, b.barSize, b.start);
      series[i] = `${b.symbol}\u0000${b.barSize}`;
    }
    if (held !== undefined && held.length < n) throw new RangeError(`held has room for ${held.length} of ${n} bars`);
    return { keys, values, series, held };
  }

  private tally(outcome: BatchOutcome): WriteResult {
    this.counters.writes += outcome.written;
    this.counters.corrections += outcome.corrections;
    this.counters.shadowed += outcome.shadowed;
    this.counters.divergent += outcome.divergent;
    for (const e of outcome.events) divergenceChannel.publish(e);
    return { written: outcome.written, shadowed: outcome.shadowed, divergent: outcome.divergent };
  }

  // ---- hot reads (allocate nothing) ----------------------------------------------------------

  private series(symbol: string, size: BarSize): SeriesKeys | undefined {
    const keys = this.keys.get(symbol, size);
    if (keys !== undefined) return keys;
    if (!isValidSymbol(symbol) || !isBarSize(size)) return undefined;
    return this.keys.add(symbol, size);
  }

  readInto(symbol: string, size: BarSize, start: number, view: BarView): boolean {
    const keys = this.series(symbol, size);
    if (keys === undefined || !isKeyStart(start)) return false;
    let buf = this.db.getBinaryFast(withStart(keys.a, start));
    if (buf === undefined) {
      // The snapshot may predate a commit we were just told about: look once more on a fresh one.
      this.db.resetReadTxn();
      buf = this.db.getBinaryFast(keys.a);
      if (buf === undefined) return false;
    }
    decodeIntoView(buf, start, view);
    return true;
  }

  latestInto(symbol: string, size: BarSize, view: BarView): boolean {
    const keys = this.series(symbol, size);
    if (keys === undefined) return false;
    const head = this.heads.getBinaryFast(keys.head);
    if (head === undefined) return false;
    const start = readStart(head, 0);
    const buf = this.db.getBinaryFast(withStart(keys.a, start));
    if (buf === undefined) return false;
    decodeIntoView(buf, start, view);
    return true;
  }

  latestNInto(symbol: string, size: BarSize, n: number, out: BarColumns): number {
    const keys = this.series(symbol, size);
    const want = Math.min(Math.floor(n), out.capacity);
    if (keys === undefined || !(want > 0)) return 0;
    // Newest first into the tail of `out`, then slide to the front if fewer were found.
    let row = want;
    for (const { key, value } of this.db.getRange({
      start: withStart(keys.b, MAX_START),
      end: withStart(keys.a, 0),
      inclusiveEnd: true,
      reverse: true,
      limit: want,
    }) as Iterable<{ key: unknown; value: Bytes }>) {
      decodeIntoColumns(value, key as number, out, --row);
    }
    const found = want - row;
    if (row > 0 && found > 0) shiftColumns(out, row, want);
    return found;
  }

  rangeInto(symbol: string, size: BarSize, from: number, to: number, out: BarColumns): number {
    const keys = this.series(symbol, size);
    if (keys === undefined || out.capacity === 0) return 0;
    const lo = Math.max(0, Math.ceil(from));
    const hi = Math.min(MAX_START, Math.floor(to));
    if (!(lo <= hi)) return 0;
    let row = 0;
    for (const { key, value } of this.db.getRange({
      start: withStart(keys.a, lo),
      end: withStart(keys.b, hi),
      inclusiveEnd: true,
      limit: out.capacity,
    }) as Iterable<{ key: unknown; value: Bytes }>) {
      decodeIntoColumns(value, key as number, out, row++);
    }
    return row;
  }

  /** Renews this thread's read snapshot, so the next read sees every commit made so far. */
  refresh(): void {
    this.db.resetReadTxn();
  }

  // ---- object reads ---------------------------------------------------------------------------

  get(symbol: string, size: BarSize, start: number): Bar | undefined {
    const keys = this.series(symbol, size);
    if (keys === undefined || !isKeyStart(start)) return undefined;
    let buf = this.db.getBinaryFast(withStart(keys.a, start));
    if (buf === undefined) {
      this.db.resetReadTxn();
      buf = this.db.getBinaryFast(keys.a);
      if (buf === undefined) return undefined;
    }
    return decodeBar(buf, symbol, size, start);
  }

  latest(symbol: string, size: BarSize): Bar | undefined {
    const keys = this.series(symbol, size);
    if (keys === undefined) return undefined;
    const head = this.heads.getBinaryFast(keys.head);
    if (head === undefined) return undefined;
    const start = readStart(head, 0);
    const buf = this.db.getBinaryFast(withStart(keys.a, start));
    return buf === undefined ? undefined : decodeBar(buf, symbol, size, start);
  }

  latestN(symbol: string, size: BarSize, n: number, to: number = MAX_START): Bar[] {
    const keys = this.series(symbol, size);
    const want = Math.floor(n);
    const hi = Math.min(MAX_START, Math.floor(to));
    if (keys === undefined || !(want > 0) || !(hi >= 0)) return [];
    const out: Bar[] = [];
    for (const { key, value } of this.db.getRange({
      start: withStart(keys.b, hi),
      end: withStart(keys.a, 0),
      inclusiveEnd: true,
      reverse: true,
      limit: want,
    }) as Iterable<{ key: unknown; value: Bytes }>) {
      out.push(decodeBar(value, symbol, size, key as number));
    }
    return out.reverse();
  }

  range(symbol: string, size: BarSize, from: number, to: number, limit?: number): Bar[] {
    const keys = this.series(symbol, size);
    const lo = Math.max(0, Math.ceil(from));
    const hi = Math.min(MAX_START, Math.floor(to));
    if (keys === undefined || !(lo <= hi)) return [];
    if (limit !== undefined && !(limit > 0)) return [];
    const out: Bar[] = [];
    for (const { key, value } of this.db.getRange({
      start: withStart(keys.a, lo),
      end: withStart(keys.b, hi),
      inclusiveEnd: true,
      limit: limit === undefined ? Infinity : Math.floor(limit),
    }) as Iterable<{ key: unknown; value: Bytes }>) {
      out.push(decodeBar(value, symbol, size, key as number));
    }
    return out;
  }

  symbols(size?: BarSize): string[] {
    const code = size === undefined ? undefined : BAR_SIZE_CODE[size];
    const out: string[] = [];
    for (const key of this.heads.getKeys() as Iterable<Bytes>) {
      const { symbol, sizeCode } = parseSeriesKey(key);
      if (code !== undefined && sizeCode !== code) continue;
      if (out[out.length - 1] !== symbol) out.push(symbol);
    }
    return out;
  }

  // ---- retention ------------------------------------------------------------------------------

  /** Removes bars older than their size's retention at `now`; resolves with how many (flushed). */
  async prune(now: number): Promise<number> {
    const total = await pruneBars(this.db, this.heads, this.retention, now);
    this.counters.pruned += total;
    return total;
  }

  /**
   * Prunes every `intervalMs` of `clock` time, in the background. Errors go to `onError` (the next
   * round still runs). Cancel the handle to stop.
   */
  startPruning(clock: Clock, intervalMs: number, onError: (err: unknown) => void = () => {}): TimerHandle {
    return this.pruners.start(clock, intervalMs, (now) => this.prune(now), onError);
  }

  stats(): BarStoreStats {
    return { ...this.counters };
  }

  /** Stops background pruning (the environment is closed by Storage.close). */
  stop(): void {
    this.pruners.stopAll();
  }
}

function isKeyStart(start: number): boolean {
  return Number.isSafeInteger(start) && start >= 0;
}

function shiftColumns(out: BarColumns, from: number, to: number): void {
  out.start.copyWithin(0, from, to);
  out.open.copyWithin(0, from, to);
  out.high.copyWithin(0, from, to);
  out.low.copyWithin(0, from, to);
  out.close.copyWithin(0, from, to);
  out.volume.copyWithin(0, from, to);
  out.vwap.copyWithin(0, from, to);
  out.trades.copyWithin(0, from, to);
  out.receivedAt.copyWithin(0, from, to);
  out.sourceCode.copyWithin(0, from, to);
}

export { BarValidationError };
