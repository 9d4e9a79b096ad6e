/** Per-symbol state of the arbiter, and what it needs from IBKR. */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { F64_PER_SLOT, FLAGS, I32_PER_SLOT, WARMED_UP, type FeedTable } from './feed-table.ts';
import type { FeedLadder } from './ladder.ts';

/** What the arbiter needs from IBKR (src/sources/ibkr adapts to it). */
export interface IbkrFeedPort {
  subscribeRealtime(symbol: string, barSize: BarSize): void;
  unsubscribe(symbol: string): void;
  fetchHistorical(symbol: string, barSize: BarSize, from: number, to: number): Promise<Bar[]>;
  connected(): boolean;
}

/**
 * One subscribed symbol. What a bar touches (lastDelivered, warmedUp, the ladder's counts) lives in
 * the arbiter's FeedTable record `slot` (feed-table.ts), read here through accessors; this object
 * holds the cold rest (warm-up and polling state) for the slow paths; the checkpoint keys are in
 * checkpoints.ts.
 */
export class SymbolFeed {
  /** A warm-up is under way (it may wait on IBKR history): others must not start a second one. */
  warming = false;
  lastHistoricalPoll = 0;
  polling = false;
  /** When the historical rung was refused or failed; it is tried again historicalPollMs later. */
  historicalFailedAt: number | null = null;

  constructor(
    readonly symbol: string,
    readonly table: FeedTable,
    readonly slot: number,
    readonly ladder: FeedLadder,
    /**
     * The trader's own last bar when it subscribes with one (a trader restart): warm-up is taken at
     * or before it and every later bar is live, so a bar that reached the cache while the trader was
     * down gets its decision (see warm-up-edge.ts).
     */
    readonly traderAfter: number | undefined,
  ) {}

  get lastDelivered(): number {
    return this.table.f64[this.slot * F64_PER_SLOT];
  }

  set lastDelivered(start: number) {
    this.table.f64[this.slot * F64_PER_SLOT] = start;
  }

  get warmedUp(): boolean {
    return (this.table.i32[this.slot * I32_PER_SLOT + FLAGS] & WARMED_UP) !== 0;
  }

  set warmedUp(yes: boolean) {
    const at = this.slot * I32_PER_SLOT + FLAGS;
    this.table.i32[at] = yes ? this.table.i32[at] | WARMED_UP : this.table.i32[at] & ~WARMED_UP;
  }
}
