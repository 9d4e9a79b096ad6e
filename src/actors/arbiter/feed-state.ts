/** Per-symbol state of the arbiter, and what it needs from IBKR. */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { FeedLadder } from './ladder.ts';

/** What the arbiter needs from IBKR (src/sources/ibkr adapts to it). */
export interface IbkrFeedPort {
  subscribeRealtime(symbol: string, barSize: BarSize): void;
  unsubscribe(symbol: string): void;
  fetchHistorical(symbol: string, barSize: BarSize, from: number, to: number): Promise<Bar[]>;
  connected(): boolean;
}

export interface SymbolFeed {
  symbol: string;
  ladder: FeedLadder;
  lastDelivered: number;
  warmedUp: boolean;
  /** A warm-up is under way (it may wait on IBKR history): others must not start a second one. */
  warming: boolean;
  lastHistoricalPoll: number;
  polling: boolean;
  /** When the historical rung was refused or failed; it is tried again historicalPollMs later. */
  historicalFailedAt: number | null;
  /** lastDelivered moved since the last checkpoint write. */
  dirty: boolean;
  checkpointKey: string;
}
