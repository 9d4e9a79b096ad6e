/**
 * The arbiter's checkpoints: the subscription under one key, and each symbol's last delivered bar
 * start under its own key, written (never awaited) at most once per event-loop turn and only when
 * it moved, so a bar costs one small write, not a rewrite of every symbol's position. The writes run
 * after the turn's messages were handled, CHUNK per turn.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { Logger } from '../../runtime/log.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import type { SymbolFeed } from './feed-state.ts';

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
  /** The first `dirtyCount` entries are dirty; the array keeps its room (no regrowth per turn). */
  private readonly dirtyFeeds: SymbolFeed[] = [];
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
    /** Whether `feed` is still the one subscribed for its symbol (a stale one is not written). */
    private readonly isCurrent: (feed: SymbolFeed) => boolean,
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

  /** Drops the writes not yet made (the subscription ended). */
  clear(): void {
    this.dirtyFeeds.length = 0;
    this.dirtyCount = 0;
  }

  /** Coalesced: one write per moved symbol per event-loop turn at most, never awaited on the hot path. */
  markDirty(feed: SymbolFeed): void {
    if (!feed.dirty) {
      feed.dirty = true;
      if (this.dirtyCount < this.dirtyFeeds.length) this.dirtyFeeds[this.dirtyCount] = feed;
      else this.dirtyFeeds.push(feed);
      this.dirtyCount++;
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
    const writes: Promise<void>[] = [];
    const n = Math.min(max, this.dirtyCount);
    for (let i = 0; i < n; i++) {
      const feed = this.dirtyFeeds[i];
      feed.dirty = false;
      if (!this.isCurrent(feed)) continue;
      writes.push(Number.isFinite(feed.lastDelivered) ? this.store.put(feed.checkpointKey, feed.lastDelivered) : this.store.delete(feed.checkpointKey));
    }
    // What is left moves to the front (a burst of thousands is written CHUNK per turn).
    this.dirtyFeeds.copyWithin(0, n, this.dirtyCount);
    this.dirtyCount -= n;
    const all = Promise.all(writes);
    all.catch((err) => this.log.error({ err: (err as Error).message }, 'arbiter checkpoint write failed'));
    return all;
  }
}
