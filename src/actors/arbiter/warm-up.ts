/**
 * The arbiter's pulls from history: the warm-up on subscribe (the last `preloadBars` bars from the
 * cache, or from IBKR history when the cache has too few) and the IBKR historical rung's polling.
 * Both write what IBKR returns to the cache before anything is handed on.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { Clock } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { BarView } from '../../storage/types.ts';
import type { IbkrFeedPort, SymbolFeed } from './feed-state.ts';
import type { Switch } from './ladder.ts';
import type { ArbiterToTrader, Rung } from './protocol.ts';

/** What the warm-up and the poller use of the arbiter. */
export interface HistoryHost {
  readonly store: BarStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly ibkr: IbkrFeedPort | null;
  readonly preloadBars: number;
  readonly historicalPollMs: number;
  /** The subscription's bar size and its length in ms. */
  barSize(): BarSize;
  sizeMs(): number;
  /** A reusable view for synchronous cache reads. */
  readonly view: BarView;
  /** Whether `feed` is still the one subscribed for `symbol`. */
  isCurrent(symbol: string, feed: SymbolFeed): boolean;
  markDirty(feed: SymbolFeed): void;
  send(msg: ArbiterToTrader): void;
  afterWarmUp(symbol: string, feed: SymbolFeed, preloadReason: string | null): void;
  deliverThrough(symbol: string, feed: SymbolFeed, through: number, rung: Rung): void;
  record(symbol: string, sw: Switch | null): void;
  onHistoricalDown(symbol: string, reason: string): void;
}

/** Hands the trader the last `preloadBars` bars as warm-up; live delivery starts after them. */
export async function warmUp(h: HistoryHost, symbol: string, feed: SymbolFeed): Promise<void> {
  if (feed.warming || feed.warmedUp) return;
  feed.warming = true;
  try {
    await warmUpOnce(h, symbol, feed);
  } finally {
    feed.warming = false;
  }
}

async function warmUpOnce(h: HistoryHost, symbol: string, feed: SymbolFeed): Promise<void> {
  const size = h.barSize();
  const want = h.preloadBars;
  if (want === 0) {
    // No warm-up asked for: live delivery starts after what the cache holds now.
    const newest = h.store.latestInto(symbol, size, h.view) ? h.view.start : h.clock.now() - 2 * h.sizeMs();
    feed.lastDelivered = Math.max(feed.lastDelivered, newest);
    feed.warmedUp = true;
    h.markDirty(feed);
    h.afterWarmUp(symbol, feed, null);
    return;
  }
  let bars = h.store.latestN(symbol, size, want);
  if (bars.length < want && h.ibkr?.connected()) {
    try {
      const now = h.clock.now();
      feed.lastHistoricalPoll = now;
      const sizeMs = h.sizeMs();
      const history = (await h.ibkr.fetchHistorical(symbol, size, now - want * sizeMs * 3, now)).filter((b) => b.start + sizeMs <= now);
      if (history.length) await h.store.putMany(history);
      bars = h.store.latestN(symbol, size, want);
    } catch (err) {
      h.log.warn({ symbol, err: (err as Error).message }, 'IBKR history for the warm-up failed; using the cache');
    }
  }
  if (!h.isCurrent(symbol, feed)) return;
  if (bars.length === 0) {
    feed.ladder.reason = 'waiting for history to warm up from';
    return;
  }
  // Bars the trader already had (after a trader restart) are warm-up, not news.
  const newest = bars[bars.length - 1].start;
  feed.lastDelivered = Math.max(feed.lastDelivered, newest);
  feed.warmedUp = true;
  h.markDirty(feed);
  h.send({ type: 'warmup', symbol, barSize: size, starts: bars.map((b) => b.start) });
  h.afterWarmUp(symbol, feed, `warm-up: ${bars.length} bars preloaded`);
  // Anything newer that arrived while warming up is live.
  h.deliverThrough(symbol, feed, Infinity, feed.ladder.serving ?? 'preload');
}

/** Polls IBKR history for bars after the last delivered one, at most every historicalPollMs. */
export async function pollHistorical(h: HistoryHost, symbol: string, feed: SymbolFeed, now: number): Promise<void> {
  const ibkr = h.ibkr;
  if (!ibkr || feed.polling || now - feed.lastHistoricalPoll < h.historicalPollMs) return;
  feed.polling = true;
  feed.lastHistoricalPoll = now;
  try {
    const sizeMs = h.sizeMs();
    const from = Number.isFinite(feed.lastDelivered) ? feed.lastDelivered + sizeMs : now - 10 * sizeMs;
    const bars = (await ibkr.fetchHistorical(symbol, h.barSize(), from, now)).filter((b) => b.start + h.sizeMs() <= now);
    if (bars.length) {
      await h.store.putMany(bars);
      if (!h.isCurrent(symbol, feed)) return;
      h.record(symbol, feed.ladder.freshBar('ibkr-historical', h.clock.now()));
      if (feed.ladder.serving === 'ibkr-historical') h.deliverThrough(symbol, feed, bars[bars.length - 1].start, 'ibkr-historical');
    }
  } catch (err) {
    if (h.isCurrent(symbol, feed)) h.onHistoricalDown(symbol, `historical request failed: ${(err as Error).message}`);
  } finally {
    feed.polling = false;
  }
}
