/**
 * The arbiter's checkpoints: the subscription under one key, and each symbol's last delivered bar
 * start under its own key, written (never awaited) at most once per event-loop turn and only when
 * it moved, so a bar costs one small write, not a rewrite of every symbol's position.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { Logger } from '../../runtime/log.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import type { SymbolFeed } from './feed-state.ts';

const CHECKPOINT_KEY = 'arbiter';

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
    void this.flush();
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
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushQueuedCheckpoint);
    }
  }

  flush(): Promise<unknown> {
    const writes: Promise<void>[] = [];
    const n = this.dirtyCount;
    this.dirtyCount = 0;
    for (let i = 0; i < n; i++) {
      const feed = this.dirtyFeeds[i];
      feed.dirty = false;
      if (!this.isCurrent(feed)) continue;
      writes.push(Number.isFinite(feed.lastDelivered) ? this.store.put(feed.checkpointKey, feed.lastDelivered) : this.store.delete(feed.checkpointKey));
    }
    const all = Promise.all(writes);
    all.catch((err) => this.log.error({ err: (err as Error).message }, 'arbiter checkpoint write failed'));
    return all;
  }
}
