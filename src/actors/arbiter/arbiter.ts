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
 *   was; the trader also drops anything at or before what it has (both sides guard). Each symbol
 *   has its own checkpoint key, written (never awaited) at most once per event-loop turn and only
 *   when it moved: a bar costs one small write, not a rewrite of every symbol's position.
 * - A resumed arbiter does not warm up again (the trader has its warm-up): it goes straight to the
 *   live rungs and hands on at once what the cache got while it was down. A collector notice lost
 *   while the peers were being rewired is caught up by the periodic tick (the cache is the truth).
 * - The hot path (a key arrives, the bar is resolved and handed on) reads LMDB synchronously into
 *   a reusable view, and hands the trader a reusable message: no allocation per bar, no awaited
 *   I/O. `send` must therefore post or copy the message before it returns.
 * - Warm-up: on subscribe, the last `preloadBars` bars come from the cache (or IBKR history when
 *   the cache has too few); live delivery starts strictly after the newest of them. With
 *   `preloadBars` 0 live delivery starts after the newest cached bar.
 * - IBKR historical polling is a pull rung: it is polled while it serves, and while the preload
 *   serves with no live rung up (else the warm-up would never end). A historical rung refused or
 *   failed is tried again after `historicalPollMs` while IBKR is connected.
 */
import { BAR_SOURCES, BAR_SOURCE_CODE, type Bar, type BarSource } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { BarView, CheckpointStore } from '../../storage/types.ts';
import { FeedLadder, type Switch } from './ladder.ts';
import { warmUpEdge, warmUpLimit } from './warm-up.ts';
import type { ArbiterStatus, ArbiterToTrader, FeedState, Rung } from './protocol.ts';

const CHECKPOINT_KEY = 'arbiter';
/** Checkpoint key, one per symbol and bar size: the start of the last bar handed to the trader. */
export function lastDeliveredKey(barSize: BarSize, symbol: string): string {
  return `arbiter:last:${barSize}:${symbol}`;
}
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
  /** Hands a message to the trader. A `bar` message object is reused: post or copy it before returning. */
  send(msg: ArbiterToTrader): void;
}

interface SymbolFeed {
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
  /**
   * The trader's own last bar when it subscribes with one (a trader restart): warm-up is taken at or
   * before it and every later bar is live, so a bar that reached the cache while the trader was down
   * gets its decision (see warm-up.ts).
   */
  traderAfter?: number;
}

/** The subscription; each symbol's position is under its own key (lastDeliveredKey). */
interface Checkpoint {
  symbols: string[];
  barSize: BarSize;
}

type BarMessage = Extract<ArbiterToTrader, { type: 'bar' }>;

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
  private readonly dirtyFeeds: SymbolFeed[] = [];
  private flushQueued = false;
  private readonly flushQueuedCheckpoint = () => {
    this.flushQueued = false;
    void this.flushCheckpoint();
  };
  /** Reused for every bar handed on (see `send`). */
  private readonly barMsg: BarMessage = { type: 'bar', symbol: '', barSize: '1Min', start: 0, source: 'sim' };

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
    if (!cp || !Array.isArray(cp.symbols) || cp.symbols.length === 0) return;
    const after: Record<string, number> = {};
    for (const symbol of cp.symbols) {
      const last = this.o.checkpoints.get<number>(lastDeliveredKey(cp.barSize, symbol));
      if (typeof last === 'number' && Number.isFinite(last)) after[symbol] = last;
    }
    this.o.log.info({ symbols: cp.symbols }, 'arbiter resuming its subscription');
    this.setup(cp.symbols, cp.barSize, after, false);
  }

  subscribe(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.unsubscribe();
    this.setup(symbols, barSize, after, warmup);
  }

  unsubscribe(): void {
    for (const symbol of this.feeds.keys()) this.o.ibkr?.unsubscribe(symbol);
    this.feeds.clear();
    this.dirtyFeeds.length = 0;
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    void this.o.checkpoints.put<Checkpoint>(CHECKPOINT_KEY, { symbols: [], barSize: this.barSize ?? '1Min' });
  }

  private setup(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.barSize = barSize;
    const now = this.o.clock.now();
    void this.o.checkpoints.put<Checkpoint>(CHECKPOINT_KEY, { symbols: [...symbols], barSize });
    for (const symbol of symbols) {
      const feed: SymbolFeed = {
        symbol,
        ladder: new FeedLadder(symbol, this.enabledRungs, this.o.climbBackAfterBars, now),
        lastDelivered: after[symbol] ?? -Infinity,
        warmedUp: !warmup && after[symbol] !== undefined,
        warming: false,
        lastHistoricalPoll: 0,
        polling: false,
        historicalFailedAt: null,
        dirty: false,
        checkpointKey: lastDeliveredKey(barSize, symbol),
        ...(warmup && Number.isFinite(after[symbol]) ? { traderAfter: after[symbol] } : {}),
      };
      this.feeds.set(symbol, feed);
      // Written now even when unknown, so a stale position of an older subscription cannot resume.
      this.markDirty(feed);
      this.o.ibkr?.subscribeRealtime(symbol, barSize);
      if (feed.warmedUp) this.afterWarmUp(symbol, feed, null);
      else void this.warmUp(symbol, feed);
    }
    this.scheduleTick();
  }

  /** Hands the trader the last `preloadBars` bars as warm-up; live delivery starts after them. */
  private async warmUp(symbol: string, feed: SymbolFeed): Promise<void> {
    if (feed.warming || feed.warmedUp) return;
    feed.warming = true;
    try {
      await this.warmUpOnce(symbol, feed);
    } finally {
      feed.warming = false;
    }
  }

  private async warmUpOnce(symbol: string, feed: SymbolFeed): Promise<void> {
    const size = this.barSize!;
    const want = this.o.preloadBars;
    if (want === 0) {
      // No warm-up asked for: live delivery starts after what the cache holds now.
      const newest = this.o.store.latestInto(symbol, size, this.view) ? this.view.start : this.o.clock.now() - 2 * this.sizeMs;
      feed.lastDelivered = warmUpEdge(feed.lastDelivered, newest, feed.traderAfter);
      feed.warmedUp = true;
      this.markDirty(feed);
      this.afterWarmUp(symbol, feed, null);
      return;
    }
    const upTo = warmUpLimit(feed.traderAfter);
    let bars = this.o.store.latestN(symbol, size, want, upTo);
    if (bars.length < want && this.o.ibkr?.connected()) {
      try {
        const now = this.o.clock.now();
        feed.lastHistoricalPoll = now;
        const sizeMs = this.sizeMs;
        const history = (await this.o.ibkr.fetchHistorical(symbol, size, now - want * sizeMs * 3, now)).filter((b) => b.start + sizeMs <= now);
        if (history.length) await this.o.store.putMany(history);
        bars = this.o.store.latestN(symbol, size, want, upTo);
      } catch (err) {
        this.o.log.warn({ symbol, err: (err as Error).message }, 'IBKR history for the warm-up failed; using the cache');
      }
    }
    if (this.feeds.get(symbol) !== feed) return;
    if (bars.length === 0) {
      feed.ladder.reason = 'waiting for history to warm up from';
      return;
    }
    // Bars the trader already had (after a trader restart) are warm-up; what came after them is news.
    const newest = bars[bars.length - 1].start;
    feed.lastDelivered = warmUpEdge(feed.lastDelivered, newest, feed.traderAfter);
    feed.warmedUp = true;
    this.markDirty(feed);
    this.o.send({ type: 'warmup', symbol, barSize: size, starts: bars.map((b) => b.start) });
    this.afterWarmUp(symbol, feed, `warm-up: ${bars.length} bars preloaded`);
    // Anything newer that arrived while warming up is live.
    this.deliverThrough(symbol, feed, Infinity, feed.ladder.serving ?? 'preload');
  }

  /** `preloadReason` null: no warm-up was handed on (a resume), so the preload rung stays down. */
  private afterWarmUp(symbol: string, feed: SymbolFeed, preloadReason: string | null): void {
    const now = this.o.clock.now();
    if (preloadReason !== null) this.record(symbol, feed.ladder.markUp('preload', now, preloadReason));
    // The cache before IBKR history: a rung that comes up second must prove itself to climb over.
    this.checkCacheFreshness(symbol, feed, now);
    if (this.o.ibkr?.connected()) this.record(symbol, feed.ladder.markUp('ibkr-historical', now, 'IBKR connected'));
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
    // A fresh write shows the collector is alive, even when another rung already handed that bar on.
    if (now - (newest + size) < this.o.cacheMaxAgeMs) this.record(symbol, feed.ladder.freshBar('cache', now), newest);
    if (newest <= feed.lastDelivered) return;
    if (feed.ladder.serving === 'cache') this.deliverThrough(symbol, feed, newest, 'cache');
  }

  /** A bar from IBKR real-time bars: written to the cache, then handed on if that rung serves. */
  async onRealtimeBar(bar: Bar): Promise<void> {
    const feed = this.feeds.get(bar.symbol);
    if (!feed || bar.barSize !== this.barSize) return;
    await this.o.store.put(bar);
    if (this.feeds.get(bar.symbol) !== feed || !feed.warmedUp) return;
    const now = this.o.clock.now();
    this.record(bar.symbol, feed.ladder.freshBar('ibkr-realtime', now), bar.start);
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
    if (!feed) return;
    feed.historicalFailedAt = this.o.clock.now();
    this.record(symbol, feed.ladder.markDown('ibkr-historical', feed.historicalFailedAt, reason));
  }

  onIbkrError(code: number): void {
    this.ibkrErrors[code] = (this.ibkrErrors[code] ?? 0) + 1;
  }

  onIbkrConnection(state: string): void {
    this.ibkrConnection = state;
    const now = this.o.clock.now();
    for (const [symbol, feed] of this.feeds) {
      if (state === 'connected') {
        feed.historicalFailedAt = null;
        if (feed.warmedUp) this.record(symbol, feed.ladder.markUp('ibkr-historical', now, 'IBKR connected'));
      } else {
        this.record(symbol, feed.ladder.markDown('ibkr-realtime', now, `IBKR connection ${state}`));
        this.record(symbol, feed.ladder.markDown('ibkr-historical', now, `IBKR connection ${state}`));
      }
    }
  }

  /**
   * Hands on, in order, every cached bar after the last delivered one up to `through`. The common
   * case (the next bar) is one synchronous read; a hole is filled from the cache. Bars other than
   * `trigger` (the bar that caused this delivery) handed on here count as holes filled.
   */
  private deliverThrough(symbol: string, feed: SymbolFeed, through: number, rung: Rung, trigger = through): void {
    const size = this.barSize!;
    const sizeMs = this.sizeMs;
    const view = this.view;
    if (through !== Infinity && through - feed.lastDelivered <= sizeMs) {
      if (this.o.store.readInto(symbol, size, through, view)) this.hand(symbol, feed, size, view.start, view.sourceCode, rung);
      return;
    }
    const from = feed.lastDelivered === -Infinity ? this.o.clock.now() - Math.max(1, this.o.preloadBars) * sizeMs : feed.lastDelivered + 1;
    const to = through === Infinity ? this.o.clock.now() : through;
    // Rare path (a switch, or a rung that skipped bars): objects are fine here.
    for (const bar of this.o.store.range(symbol, size, from, to)) {
      if (this.hand(symbol, feed, size, bar.start, BAR_SOURCE_CODE[bar.source], rung) && bar.start !== trigger) this.holesFilled++;
    }
  }

  /** Hands one bar's key to the trader unless it is not after the last one; true when handed. */
  private hand(symbol: string, feed: SymbolFeed, barSize: BarSize, start: number, sourceCode: number, rung: Rung): boolean {
    if (start <= feed.lastDelivered) return false;
    feed.lastDelivered = start;
    this.deliveredByRung[rung] = (this.deliveredByRung[rung] ?? 0) + 1;
    const msg = this.barMsg;
    msg.symbol = symbol;
    msg.barSize = barSize;
    msg.start = start;
    msg.source = SOURCE_BY_CODE[sourceCode] ?? 'sim';
    this.o.send(msg);
    this.markDirty(feed);
    return true;
  }

  /** Logs, counts and announces a switch; `trigger` is the start of the bar that caused it, if any. */
  private record(symbol: string, sw: Switch | null, trigger = NaN): void {
    if (!sw) return;
    this.switches++;
    const key = `${symbol}|${sw.from ?? 'none'}|${sw.to ?? 'none'}`;
    this.switchCounts.set(key, (this.switchCounts.get(key) ?? 0) + 1);
    this.o.log.info({ symbol, from: sw.from, to: sw.to, reason: sw.reason }, 'feed switched');
    this.o.send({ type: 'feed', symbol, rung: sw.to, reason: sw.reason });
    const feed = this.feeds.get(symbol);
    // A new rung may already hold bars the old one never handed on.
    if (feed?.warmedUp && sw.to && sw.to !== 'preload' && sw.to !== 'ibkr-historical') this.deliverThrough(symbol, feed, Infinity, sw.to, trigger);
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
    const ibkrUp = this.o.ibkr?.connected() ?? false;
    // See every commit made so far (another thread's writes), not this turn's snapshot.
    this.o.store.refresh();
    for (const [symbol, feed] of this.feeds) {
      if (!feed.warmedUp) {
        const askIbkr = ibkrUp && now - feed.lastHistoricalPoll >= this.o.historicalPollMs;
        if (!feed.warming && (askIbkr || this.o.store.latestInto(symbol, this.barSize!, this.view))) void this.warmUp(symbol, feed);
        continue;
      }
      const newest = this.checkCacheFreshness(symbol, feed, now);
      const ladder = feed.ladder;
      // A key whose notice was lost (sent while this arbiter restarted) is caught up here.
      if (ladder.serving === 'cache' && newest > feed.lastDelivered) this.deliverThrough(symbol, feed, newest, 'cache', NaN);
      if (ibkrUp && feed.historicalFailedAt !== null && now - feed.historicalFailedAt >= this.o.historicalPollMs) {
        feed.historicalFailedAt = null;
        this.record(symbol, ladder.markUp('ibkr-historical', now, 'IBKR history asked again'));
      }
      const serving = ladder.serving;
      const waitingOnPreload = serving === 'preload' && !ladder.isUp('ibkr-realtime') && !ladder.isUp('cache');
      if (serving === 'ibkr-historical' || (waitingOnPreload && ladder.isUp('ibkr-historical'))) void this.pollHistorical(symbol, feed, now);
    }
  }

  /** Marks the cache rung up or down by the age of its newest bar; returns that bar's start. */
  private checkCacheFreshness(symbol: string, feed: SymbolFeed, now: number): number {
    if (!this.o.store.latestInto(symbol, this.barSize!, this.view)) {
      this.record(symbol, feed.ladder.markDown('cache', now, 'the cache has no bars for this symbol'));
      return -Infinity;
    }
    const newest = this.view.start;
    const age = now - (newest + this.sizeMs);
    if (age >= this.o.cacheMaxAgeMs) {
      this.record(symbol, feed.ladder.markDown('cache', now, `stale: newest cached bar ended ${Math.round(age / 1000)} s ago`));
    } else if (!feed.ladder.isUp('cache')) {
      this.record(symbol, feed.ladder.markUp('cache', now, 'fresh bars in the cache'));
    }
    return newest;
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
        if (this.feeds.get(symbol) !== feed) return;
        this.record(symbol, feed.ladder.freshBar('ibkr-historical', this.o.clock.now()));
        if (feed.ladder.serving === 'ibkr-historical') this.deliverThrough(symbol, feed, bars[bars.length - 1].start, 'ibkr-historical');
      }
    } catch (err) {
      if (this.feeds.get(symbol) === feed) this.onHistoricalDown(symbol, `historical request failed: ${(err as Error).message}`);
    } finally {
      feed.polling = false;
    }
  }

  /** Coalesced: one write per moved symbol per event-loop turn at most, never awaited on the hot path. */
  private markDirty(feed: SymbolFeed): void {
    if (!feed.dirty) {
      feed.dirty = true;
      this.dirtyFeeds.push(feed);
    }
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushQueuedCheckpoint);
    }
  }

  private flushCheckpoint(): Promise<unknown> {
    const writes: Promise<void>[] = [];
    for (const feed of this.dirtyFeeds) {
      feed.dirty = false;
      if (this.feeds.get(feed.symbol) !== feed) continue;
      writes.push(
        Number.isFinite(feed.lastDelivered)
          ? this.o.checkpoints.put(feed.checkpointKey, feed.lastDelivered)
          : this.o.checkpoints.delete(feed.checkpointKey),
      );
    }
    this.dirtyFeeds.length = 0;
    const all = Promise.all(writes);
    all.catch((err) => this.o.log.error({ err: (err as Error).message }, 'arbiter checkpoint write failed'));
    return all;
  }

  async shutdown(): Promise<void> {
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
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
