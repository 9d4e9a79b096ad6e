/**
 * The arbiter's checkpoints: the subscription under one key, and each symbol's last delivered bar
 * start under its own key, written (never awaited) at most once per event-loop turn and only when
 * it moved, so a bar costs one small write, not a rewrite of every symbol's position. The writes run
 * after the turn's messages were handled, CHUNK per turn, each chunk one transaction when the store
 * offers `putMany` (a 5,000-symbol bar close: a few commits, not 5,000 puts). The dirty bit and the position are in the
 * subscription's FeedTable (feed-table.ts); the dirty list is a list of slots.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { Logger } from '../../runtime/log.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import { DIRTY, F64_PER_SLOT, FLAGS, I32_PER_SLOT, type FeedTable } from './feed-table.ts';

const CHECKPOINT_KEY = 'arbiter';

/** Positions written per turn: a burst's writes give way to the next message between chunks. */
const CHUNK = 1024;

/** Checkpoint key, one per symbol and bar size: the start of the last bar handed to the trader. */
export function lastDeliveredKey(barSize: BarSize, symbol: string): string {
  return `arbiter:last:${barSize}:${symbol}`;
}

/** The subscription; each symbol's position is under its own key (lastDeliveredKey). */
export interface Subscription {
  symbols: string[];
  barSize: BarSize;
}

export class ArbiterCheckpoints {
  /** The subscription's table and each slot's key; null when nothing is subscribed. */
  private table: FeedTable | null = null;
  private keys: readonly string[] = [];
  /** The first `dirtyCount` entries are the dirty slots, oldest first (grown by doubling, never shrunk). */
  private dirty = new Int32Array(64);
  private dirtyCount = 0;
  private flushQueued = false;
  private readonly flushQueuedCheckpoint = () => {
    this.flushQueued = false;
    void this.flush(CHUNK);
    if (this.dirtyCount > 0) this.queueFlush();
  };

  constructor(
    private readonly store: CheckpointStore,
    private readonly log: Logger,
  ) {}

  readSubscription(): { subscription: Subscription; after: Record<string, number> } | null {
    const cp = this.store.get<Subscription>(CHECKPOINT_KEY);
    if (!cp || !Array.isArray(cp.symbols) || cp.symbols.length === 0) return null;
    const after: Record<string, number> = {};
    for (const symbol of cp.symbols) {
      const last = this.store.get<number>(lastDeliveredKey(cp.barSize, symbol));
      if (typeof last === 'number' && Number.isFinite(last)) after[symbol] = last;
    }
    return { subscription: cp, after };
  }

  writeSubscription(symbols: string[], barSize: BarSize): void {
    void this.store.put<Subscription>(CHECKPOINT_KEY, { symbols: [...symbols], barSize });
  }

  /** A new subscription: positions are read from `table`, slot i written under `keys[i]`. */
  bind(table: FeedTable, keys: readonly string[]): void {
    this.clear();
    this.table = table;
    this.keys = keys;
  }

  /** Drops the writes not yet made (the subscription ended). */
  clear(): void {
    this.table = null;
    this.keys = [];
    this.dirtyCount = 0;
  }

  /**
   * Coalesced: one write per moved symbol per event-loop turn at most, never awaited on the hot
   * path. A slot of a table no longer bound (a subscription that ended) is not written.
   */
  markDirty(table: FeedTable, slot: number): void {
    if (table !== this.table) return;
    const at = slot * I32_PER_SLOT + FLAGS;
    const flags = table.i32[at];
    if ((flags & DIRTY) === 0) {
      table.i32[at] = flags | DIRTY;
      if (this.dirtyCount === this.dirty.length) {
        const grown = new Int32Array(this.dirty.length * 2);
        grown.set(this.dirty);
        this.dirty = grown;
      }
      this.dirty[this.dirtyCount++] = slot;
    }
    this.queueFlush();
  }

  /** Written in the check phase of the turn, after the turn's messages (and their bars to the trader). */
  private queueFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushQueuedCheckpoint);
    }
  }

  /** Writes up to `max` of the moved positions (all by default), oldest first. */
  flush(max = Infinity): Promise<unknown> {
    const n = Math.min(max, this.dirtyCount);
    const table = this.table;
    const entries: Array<readonly [string, number | undefined]> = [];
    if (table !== null) {
      for (let i = 0; i < n; i++) {
        const slot = this.dirty[i];
        table.i32[slot * I32_PER_SLOT + FLAGS] &= ~DIRTY;
        const last = table.f64[slot * F64_PER_SLOT];
        entries.push([this.keys[slot], Number.isFinite(last) ? last : undefined]);
      }
    }
    // What is left moves to the front (a burst of thousands is written CHUNK per turn).
    this.dirty.copyWithin(0, n, this.dirtyCount);
    this.dirtyCount -= n;
    const all = this.write(entries);
    all.catch((err) => this.log.error({ err: (err as Error).message }, 'arbiter checkpoint write failed'));
    return all;
  }

  private write(entries: ReadonlyArray<readonly [string, number | undefined]>): Promise<unknown> {
    if (entries.length === 0) return Promise.resolve();
    if (this.store.putMany) return this.store.putMany(entries);
    return Promise.all(entries.map(([key, last]) => (last === undefined ? this.store.delete(key) : this.store.put(key, last))));
  }
}
