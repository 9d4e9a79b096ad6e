/**
 * The feed arbiter: serves the trading loop, per symbol, from the best rung of the ladder, and hands
 * it each bar's key once, in order.
 *
 * Design decisions:
 * - Every bar is in the cache before it is handed on (the collector writes cache bars; the arbiter
 *   writes the IBKR bars it receives). So whatever rung serves, the trader reads the bar from LMDB,
 *   and a switch never loses a bar: on each delivery the arbiter first hands on, from the cache, any
 *   bars between the last one delivered and this one (what the old rung missed). A bar at or before
 *   the last delivered one is never handed on again.
 * - The last delivered start per symbol is checkpointed, so a restarted arbiter resumes where it
 *   was; the trader also drops anything at or before what it has (both sides guard).
 * - The hot path (a key arrives, the bar is resolved and handed on) reads LMDB synchronously into
 *   a reusable view: no allocation per bar, no awaited I/O.
 * - Warm-up: on subscribe, the last `preloadBars` bars come from the cache (or IBKR history when
 *   the cache has too few); live delivery starts strictly after the newest of them.
 */
import { BAR_SOURCES, BAR_SOURCE_CODE, type Bar, type BarSource } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { BarView, CheckpointStore } from '../../storage/types.ts';
import { FeedLadder, type Switch } from './ladder.ts';
import type { ArbiterStatus, ArbiterToTrader, FeedState, Rung } from './protocol.ts';

const CHECKPOINT_KEY = 'arbiter';
const SOURCE_BY_CODE: BarSource[] = [];
for (const s of BAR_SOURCES) SOURCE_BY_CODE[BAR_SOURCE_CODE[s]] = s;

/** What the arbiter needs from IBKR (src/sources/ibkr adapts to it). */
export interface IbkrFeedPort {
  subscribeRealtime(symbol: string, barSize: BarSize): void;
  unsubscribe(symbol: string): void;
  fetchHistorical(symbol: string, barSize: BarSize, from: number, to: number): Promise<Bar[]>;
  connected(): boolean;
}

export interface ArbiterOptions {
  store: BarStore;
  checkpoints: CheckpointStore;
  clock: Clock;
  log: Logger;
  cacheMaxAgeMs: number;
  preloadBars: number;
  climbBackAfterBars: number;
  historicalPollMs: number;
  ibkr: IbkrFeedPort | null;
  send(msg: ArbiterToTrader): void;
}

interface SymbolFeed {
  ladder: FeedLadder;
  lastDelivered: number;
  warmedUp: boolean;
  lastHistoricalPoll: number;
  polling: boolean;
}

interface Checkpoint {
  symbols: string[];
  barSize: BarSize;
  lastDelivered: Record<string, number>;
}

export class Arbiter {
  private barSize: BarSize | null = null;
  private readonly feeds = new Map<string, SymbolFeed>();
  private readonly view: BarView = { start: 0, open: 0, high: 0, low: 0, close: 0, volume: 0, vwap: 0, trades: 0, sourceCode: 0, receivedAt: 0 };
  private tickTimer: TimerHandle | undefined;
  private switches = 0;
  private readonly switchCounts = new Map<string, number>();
  private readonly deliveredByRung: Record<string, number> = {};
  private holesFilled = 0;
  private stalls = 0;
  private readonly ibkrErrors: Record<string, number> = {};
  private ibkrConnection = 'disabled';
  private checkpointDirty = false;

  constructor(private readonly o: ArbiterOptions) {
    if (o.ibkr) this.ibkrConnection = 'connecting';
  }

  private get sizeMs(): number {
    return barSizeMs(this.barSize ?? '1Min');
  }

  private get enabledRungs(): Rung[] {
    return this.o.ibkr ? ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'] : ['preload', 'cache'];
  }

  /** A restarted arbiter takes its subscription back, without a second warm-up. */
  resume(): void {
    const cp = this.o.checkpoints.get<Checkpoint>(CHECKPOINT_KEY);
    if (!cp || cp.symbols.length === 0) return;
    this.o.log.info({ symbols: cp.symbols }, 'arbiter resuming its subscription');
    this.setup(cp.symbols, cp.barSize, cp.lastDelivered, false);
  }

  subscribe(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.unsubscribe();
    this.setup(symbols, barSize, after, warmup);
  }

  unsubscribe(): void {
    for (const symbol of this.feeds.keys()) this.o.ibkr?.unsubscribe(symbol);
    this.feeds.clear();
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    void this.o.checkpoints.put(CHECKPOINT_KEY, { symbols: [], barSize: this.barSize ?? '1Min', lastDelivered: {} });
  }

  private setup(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.barSize = barSize;
    const now = this.o.clock.now();
    for (const symbol of symbols) {
      const feed: SymbolFeed = {
        ladder: new FeedLadder(symbol, this.enabledRungs, this.o.climbBackAfterBars, now),
        lastDelivered: after[symbol] ?? -Infinity,
        warmedUp: !warmup && after[symbol] !== undefined,
        lastHistoricalPoll: 0,
        polling: false,
      };
      this.feeds.set(symbol, feed);
      if (this.o.ibkr) {
        this.o.ibkr.subscribeRealtime(symbol, barSize);
        if (this.o.ibkr.connected()) feed.ladder.markUp('ibkr-historical', now, 'IBKR connected');
      }
      if (feed.warmedUp) this.afterWarmUp(symbol, feed, 'resumed after a restart');
      else void this.warmUp(symbol, feed);
    }
    this.saveCheckpoint();
    this.scheduleTick();
  }

  /** Hands the trader the last `preloadBars` bars as warm-up; live delivery starts after them. */
  private async warmUp(symbol: string, feed: SymbolFeed): Promise<void> {
    const size = this.barSize!;
    let bars = this.o.store.latestN(symbol, size, this.o.preloadBars);
    if (bars.length < this.o.preloadBars && this.o.ibkr?.connected()) {
      try {
        const now = this.o.clock.now();
        const history = await this.o.ibkr.fetchHistorical(symbol, size, now - this.o.preloadBars * this.sizeMs * 3, now);
        if (history.length) await this.o.store.putMany(history);
        bars = this.o.store.latestN(symbol, size, this.o.preloadBars);
      } catch (err) {
        this.o.log.warn({ symbol, err: (err as Error).message }, 'IBKR history for the warm-up failed; using the cache');
      }
    }
    if (this.feeds.get(symbol) !== feed) return;
    if (bars.length === 0) {
      feed.ladder.reason = 'waiting for history to warm up from';
      return;
    }
    // Bars the trader already had (after a trader restart) are warm-up, not news.
    const newest = bars[bars.length - 1].start;
    feed.lastDelivered = Math.max(feed.lastDelivered, newest);
    feed.warmedUp = true;
    this.o.send({ type: 'warmup', symbol, barSize: size, starts: bars.map((b) => b.start) });
    this.afterWarmUp(symbol, feed, `warm-up: ${bars.length} bars preloaded`);
    // Anything newer that arrived while warming up is live.
    this.deliverThrough(symbol, feed, Infinity, feed.ladder.serving ?? 'preload');
  }

  private afterWarmUp(symbol: string, feed: SymbolFeed, reason: string): void {
    const now = this.o.clock.now();
    this.record(symbol, feed.ladder.markUp('preload', now, reason));
    this.checkCacheFreshness(symbol, feed, now);
    this.saveCheckpoint();
  }

  /** The collector wrote these keys. Hot path: reads the cache, allocates nothing per bar. */
  onBarsWritten(barSize: BarSize, symbol: string, starts: readonly number[]): void {
    const feed = this.feeds.get(symbol);
    if (!feed || barSize !== this.barSize) return;
    if (!feed.warmedUp) {
      void this.warmUp(symbol, feed);
      return;
    }
    const now = this.o.clock.now();
    const size = this.sizeMs;
    let newest = -Infinity;
    for (let i = 0; i < starts.length; i++) if (starts[i] > newest) newest = starts[i];
    if (newest <= feed.lastDelivered) return;
    if (now - (newest + size) < this.o.cacheMaxAgeMs) this.record(symbol, feed.ladder.freshBar('cache', now));
    if (feed.ladder.serving === 'cache') this.deliverThrough(symbol, feed, newest, 'cache');
  }

  /** A bar from IBKR real-time bars: written to the cache, then handed on if that rung serves. */
  async onRealtimeBar(bar: Bar): Promise<void> {
    const feed = this.feeds.get(bar.symbol);
    if (!feed || bar.barSize !== this.barSize) return;
    await this.o.store.put(bar);
    if (!feed.warmedUp) return;
    const now = this.o.clock.now();
    this.record(bar.symbol, feed.ladder.freshBar('ibkr-realtime', now));
    if (feed.ladder.serving === 'ibkr-realtime') this.deliverThrough(bar.symbol, feed, bar.start, 'ibkr-realtime');
  }

  /** IBKR refused or lost real-time bars for a symbol (420, 354, 10168, a stall). */
  onRealtimeDown(symbol: string, reason: string, stall = false): void {
    const feed = this.feeds.get(symbol);
    if (!feed) return;
    if (stall) this.stalls++;
    this.record(symbol, feed.ladder.markDown('ibkr-realtime', this.o.clock.now(), reason));
  }

  /** IBKR refused historical data for a symbol. */
  onHistoricalDown(symbol: string, reason: string): void {
    const feed = this.feeds.get(symbol);
    if (feed) this.record(symbol, feed.ladder.markDown('ibkr-historical', this.o.clock.now(), reason));
  }

  onIbkrError(code: number): void {
    this.ibkrErrors[code] = (this.ibkrErrors[code] ?? 0) + 1;
  }

  onIbkrConnection(state: string): void {
    this.ibkrConnection = state;
    const now = this.o.clock.now();
    for (const [symbol, feed] of this.feeds) {
      if (state === 'connected') {
        this.record(symbol, feed.ladder.markUp('ibkr-historical', now, 'IBKR connected'));
      } else {
        this.record(symbol, feed.ladder.markDown('ibkr-realtime', now, `IBKR connection ${state}`));
        this.record(symbol, feed.ladder.markDown('ibkr-historical', now, `IBKR connection ${state}`));
      }
    }
  }

  /**
   * Hands on, in order, every cached bar after the last delivered one up to `through`. The common
   * case (the next bar) is one synchronous read; a hole is filled from the cache.
   */
  private deliverThrough(symbol: string, feed: SymbolFeed, through: number, rung: Rung): void {
    const size = this.barSize!;
    const sizeMs = this.sizeMs;
    const view = this.view;
    if (through !== Infinity && through - feed.lastDelivered <= sizeMs) {
      if (this.o.store.readInto(symbol, size, through, view)) this.hand(symbol, feed, size, view.start, view.sourceCode, rung);
      return;
    }
    const from = feed.lastDelivered === -Infinity ? this.o.clock.now() - this.o.preloadBars * sizeMs : feed.lastDelivered + 1;
    const to = through === Infinity ? this.o.clock.now() : through;
    const missed = this.o.store.range(symbol, size, from, to);
    if (missed.length > 1) this.holesFilled += missed.length - 1;
    for (const bar of missed) this.hand(symbol, feed, size, bar.start, BAR_SOURCE_CODE[bar.source], rung);
  }

  private hand(symbol: string, feed: SymbolFeed, barSize: BarSize, start: number, sourceCode: number, rung: Rung): void {
    if (start <= feed.lastDelivered) return;
    feed.lastDelivered = start;
    this.deliveredByRung[rung] = (this.deliveredByRung[rung] ?? 0) + 1;
    this.o.send({ type: 'bar', symbol, barSize, start, source: SOURCE_BY_CODE[sourceCode] ?? 'sim' });
    this.saveCheckpoint();
  }

  private record(symbol: string, sw: Switch | null): void {
    if (!sw) return;
    this.switches++;
    const key = `${symbol}|${sw.from ?? 'none'}|${sw.to ?? 'none'}`;
    this.switchCounts.set(key, (this.switchCounts.get(key) ?? 0) + 1);
    this.o.log.info({ symbol, from: sw.from, to: sw.to, reason: sw.reason }, 'feed switched');
    this.o.send({ type: 'feed', symbol, rung: sw.to, reason: sw.reason });
    const feed = this.feeds.get(symbol);
    // A new rung may already hold bars the old one never handed on.
    if (feed?.warmedUp && sw.to && sw.to !== 'preload' && sw.to !== 'ibkr-historical') this.deliverThrough(symbol, feed, Infinity, sw.to);
  }

  private scheduleTick(): void {
    this.tickTimer?.cancel();
    const period = Math.min(5_000, Math.max(250, this.sizeMs / 12));
    this.tickTimer = this.o.clock.setTimeout(() => {
      this.tick();
      if (this.feeds.size > 0) this.scheduleTick();
    }, period);
  }

  /** Periodic: cache freshness, the historical rung's polling, late warm-ups. */
  tick(): void {
    const now = this.o.clock.now();
    for (const [symbol, feed] of this.feeds) {
      if (!feed.warmedUp) {
        if (this.o.store.latestInto(symbol, this.barSize!, this.view)) void this.warmUp(symbol, feed);
        continue;
      }
      this.checkCacheFreshness(symbol, feed, now);
      if (feed.ladder.serving === 'ibkr-historical') void this.pollHistorical(symbol, feed, now);
    }
    if (this.checkpointDirty) this.flushCheckpoint();
  }

  private checkCacheFreshness(symbol: string, feed: SymbolFeed, now: number): void {
    if (!this.o.store.latestInto(symbol, this.barSize!, this.view)) {
      this.record(symbol, feed.ladder.markDown('cache', now, 'the cache has no bars for this symbol'));
      return;
    }
    const age = now - (this.view.start + this.sizeMs);
    if (age >= this.o.cacheMaxAgeMs) {
      this.record(symbol, feed.ladder.markDown('cache', now, `stale: newest cached bar ended ${Math.round(age / 1000)} s ago`));
    } else if (!feed.ladder.isUp('cache')) {
      this.record(symbol, feed.ladder.markUp('cache', now, 'fresh bars in the cache'));
    }
  }

  private async pollHistorical(symbol: string, feed: SymbolFeed, now: number): Promise<void> {
    const ibkr = this.o.ibkr;
    if (!ibkr || feed.polling || now - feed.lastHistoricalPoll < this.o.historicalPollMs) return;
    feed.polling = true;
    feed.lastHistoricalPoll = now;
    try {
      const from = Number.isFinite(feed.lastDelivered) ? feed.lastDelivered + this.sizeMs : now - 10 * this.sizeMs;
      const bars = (await ibkr.fetchHistorical(symbol, this.barSize!, from, now)).filter((b) => b.start + this.sizeMs <= now);
      if (bars.length) {
        await this.o.store.putMany(bars);
        this.record(symbol, feed.ladder.freshBar('ibkr-historical', this.o.clock.now()));
        if (feed.ladder.serving === 'ibkr-historical') this.deliverThrough(symbol, feed, bars[bars.length - 1].start, 'ibkr-historical');
      }
    } catch (err) {
      this.onHistoricalDown(symbol, `historical request failed: ${(err as Error).message}`);
    } finally {
      feed.polling = false;
    }
  }

  private saveCheckpoint(): void {
    this.checkpointDirty = true;
    // Coalesced: one write per event-loop turn at most, never awaited on the hot path.
    queueMicrotask(() => {
      if (this.checkpointDirty) this.flushCheckpoint();
    });
  }

  private flushCheckpoint(): Promise<void> {
    this.checkpointDirty = false;
    const lastDelivered: Record<string, number> = {};
    for (const [symbol, feed] of this.feeds) if (Number.isFinite(feed.lastDelivered)) lastDelivered[symbol] = feed.lastDelivered;
    return this.o.checkpoints.put(CHECKPOINT_KEY, { symbols: [...this.feeds.keys()], barSize: this.barSize ?? '1Min', lastDelivered });
  }

  async shutdown(): Promise<void> {
    this.tickTimer?.cancel();
    await this.flushCheckpoint();
  }

  status(): ArbiterStatus {
    const feed: Record<string, FeedState> = {};
    for (const [symbol, f] of this.feeds) {
      feed[symbol] = {
        rung: f.ladder.serving,
        since: new Date(f.ladder.since).toISOString(),
        reason: f.ladder.reason,
        last_bar_time: Number.isFinite(f.lastDelivered) ? new Date(f.lastDelivered).toISOString() : null,
        unavailable: f.ladder.unavailable(),
      };
    }
    return {
      symbols: [...this.feeds.keys()],
      bar_size: this.barSize,
      feed,
      switches: this.switches,
      ibkr: { enabled: this.o.ibkr !== null, connection: this.ibkrConnection, errors: { ...this.ibkrErrors } },
    };
  }

  metrics(): MetricSample[] {
    const out: MetricSample[] = [
      { name: 'barkeep_feed_stalls_total', help: 'Real-time subscriptions found silent', type: 'counter', labels: {}, value: this.stalls },
      { name: 'barkeep_feed_holes_filled_total', help: 'Bars handed on from the cache to fill a switch', type: 'counter', labels: {}, value: this.holesFilled },
    ];
    for (const [key, n] of this.switchCounts) {
      const [symbol, from, to] = key.split('|');
      out.push({ name: 'barkeep_feed_switches_total', help: 'Feed ladder switches', type: 'counter', labels: { symbol, from, to }, value: n });
    }
    for (const [rung, n] of Object.entries(this.deliveredByRung)) {
      out.push({ name: 'barkeep_feed_bars_delivered_total', help: 'Bars handed to the trading loop, by rung', type: 'counter', labels: { rung }, value: n });
    }
    for (const [code, n] of Object.entries(this.ibkrErrors)) {
      out.push({ name: 'barkeep_ibkr_errors_total', help: 'IBKR errors by code', type: 'counter', labels: { code }, value: n });
    }
    for (const [symbol, f] of this.feeds) {
      out.push({
        name: 'barkeep_feed_rung',
        help: 'Rung serving each symbol (0 ibkr-realtime .. 3 ibkr-historical, -1 none)',
        type: 'gauge',
        labels: { symbol },
        value: f.ladder.serving === null ? -1 : ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'].indexOf(f.ladder.serving),
      });
    }
    return out;
  }
}
