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
 * - The hot path (a key arrives, the bar is resolved and handed on) is one typed-array read (the
 *   notice's symbol id -> slot, symbol-rows.ts; a string-keyed Map lookup only the first time a
 *   collector names a symbol, or for a caller without ids) and one 32-byte record of the FeedTable
 *   (feed-table.ts), whatever the number of symbols; it hands the trader a reusable message: no
 *   allocation per bar, no awaited I/O. `send` must
 *   therefore post or copy the message before it returns. The collector's notice says which source the cache holds for each key it
 *   wrote, so the next bar is handed on without reading it back (the trader reads it); a notice
 *   without (IBKR, a hole, a catch-up) is read from LMDB synchronously into a reusable view.
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
import { arbiterMetrics, arbiterStatus, type ArbiterCounts } from './arbiter-metrics.ts';
import { ArbiterCheckpoints, lastDeliveredKey } from './checkpoints.ts';
import { SymbolFeed, type IbkrFeedPort } from './feed-state.ts';
import { CACHE, F64_PER_SLOT, FeedTable, countFreshIfServing, FLAGS, I32_PER_SLOT, servingOf, WARMED_UP } from './feed-table.ts';
import { FeedLadder, LADDER, rungCode, type Switch } from './ladder.ts';
import type { ArbiterStatus, ArbiterToTrader, Rung } from './protocol.ts';
import { SymbolRows } from './symbol-rows.ts';
import type { CollectorToArbiter } from '../collector/protocol.ts';
import { pollHistorical, warmUp, type HistoryHost } from './warm-up.ts';

export { lastDeliveredKey } from './checkpoints.ts';
export type { IbkrFeedPort } from './feed-state.ts';

const SOURCE_BY_CODE: BarSource[] = [];
for (const s of BAR_SOURCES) SOURCE_BY_CODE[BAR_SOURCE_CODE[s]] = s;

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
  /** Told of each bar handed to the trader and the rung that served it (delivery-recorder.ts). */
  onDelivered?(bar: BarMessage, rung: Rung): void;
}

type BarMessage = Extract<ArbiterToTrader, { type: 'bar' }>;

/** Symbols the periodic scan reads per event-loop turn (tick). */
const TICK_SLICE = 250;

export class Arbiter {
  private barSize: BarSize | null = null;
  /** The subscription's bar length in ms (1Min until there is one). */
  private barMs = barSizeMs('1Min');
  /** Symbol -> slot in `table` (a notice's symbols are resolved by id, `rows`, and ask this once each). */
  private readonly slots = new Map<string, number>();
  /** A collector notice's symbol ids -> slots (symbol-rows.ts). */
  private readonly rows = new SymbolRows();
  /** This thread's read snapshot was renewed for the notice being handled (see `written`). */
  private noticeSnapshotFresh = false;
  /** The subscription's per-symbol hot state (feed-table.ts), and each slot's cold state. */
  private table = new FeedTable(0);
  private feedAt: SymbolFeed[] = [];
  private readonly view: BarView = { start: 0, open: 0, high: 0, low: 0, close: 0, volume: 0, vwap: 0, trades: 0, sourceCode: 0, receivedAt: 0 };
  private tickTimer: TimerHandle | undefined;
  /** The periodic scan under way (tick): the feeds it walks and the next one; Infinity when none. */
  private scanFeeds: SymbolFeed[] = [];
  private scanAt = Infinity;
  private switches = 0;
  private readonly switchCounts = new Map<string, number>();
  /** Bars handed on per rung, LADDER order. */
  private readonly deliveredByRung = new Float64Array(LADDER.length);
  private holesFilled = 0;
  private stalls = 0;
  private readonly ibkrErrors: Record<string, number> = {};
  private ibkrConnection = 'disabled';
  private readonly checkpoints: ArbiterCheckpoints;
  private readonly history: HistoryHost;
  /** Reused for every bar handed on (see `send`). */
  private readonly barMsg: BarMessage = { type: 'bar', symbol: '', barSize: '1Min', start: 0, source: 'sim' };

  constructor(private readonly o: ArbiterOptions) {
    if (o.ibkr) this.ibkrConnection = 'connecting';
    this.checkpoints = new ArbiterCheckpoints(o.checkpoints, o.log);
    this.history = {
      store: o.store,
      clock: o.clock,
      log: o.log,
      ibkr: o.ibkr,
      preloadBars: o.preloadBars,
      historicalPollMs: o.historicalPollMs,
      view: this.view,
      barSize: () => this.barSize!,
      sizeMs: () => this.barMs,
      isCurrent: (symbol, feed) => this.feed(symbol) === feed,
      markDirty: (feed) => this.checkpoints.markDirty(feed.table, feed.slot),
      send: (msg) => this.o.send(msg),
      afterWarmUp: (symbol, feed, reason) => this.afterWarmUp(symbol, feed, reason),
      deliverThrough: (symbol, feed, through, rung) => this.deliverThrough(symbol, feed, through, rung),
      record: (symbol, sw) => this.record(symbol, sw),
      onHistoricalDown: (symbol, reason) => this.onHistoricalDown(symbol, reason),
    };
  }

  private feed(symbol: string): SymbolFeed | undefined {
    const slot = this.slots.get(symbol);
    return slot === undefined ? undefined : this.feedAt[slot];
  }

  private get enabledRungs(): Rung[] {
    return this.o.ibkr ? ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'] : ['preload', 'cache'];
  }

  /** A restarted arbiter takes its subscription back, without a second warm-up. */
  resume(): void {
    const saved = this.checkpoints.readSubscription();
    if (!saved) return;
    const { subscription: cp, after } = saved;
    this.o.log.info({ symbols: cp.symbols }, 'arbiter resuming its subscription');
    this.setup(cp.symbols, cp.barSize, after, false);
  }

  subscribe(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.unsubscribe();
    this.setup(symbols, barSize, after, warmup);
  }

  unsubscribe(): void {
    for (const symbol of this.slots.keys()) this.o.ibkr?.unsubscribe(symbol);
    this.slots.clear();
    this.feedAt = [];
    this.table = new FeedTable(0);
    this.checkpoints.clear();
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    this.checkpoints.writeSubscription([], this.barSize ?? '1Min');
  }

  private setup(symbols: string[], barSize: BarSize, after: Record<string, number>, warmup: boolean): void {
    this.barSize = barSize;
    this.barMs = barSizeMs(barSize);
    const now = this.o.clock.now();
    this.checkpoints.writeSubscription(symbols, barSize);
    const unique = [...new Set(symbols)];
    const table = new FeedTable(unique.length);
    this.table = table;
    this.checkpoints.bind(
      table,
      unique.map((symbol) => lastDeliveredKey(barSize, symbol)),
    );
    for (const [slot, symbol] of unique.entries()) {
      const ladder = new FeedLadder(symbol, this.enabledRungs, this.o.climbBackAfterBars, now, table, slot);
      const traderAfter = warmup && Number.isFinite(after[symbol]) ? after[symbol] : undefined;
      const feed = new SymbolFeed(symbol, table, slot, ladder, traderAfter);
      feed.lastDelivered = after[symbol] ?? -Infinity;
      feed.warmedUp = !warmup && after[symbol] !== undefined;
      this.slots.set(symbol, slot);
      this.feedAt.push(feed);
      // Written now even when unknown, so a stale position of an older subscription cannot resume.
      this.checkpoints.markDirty(table, slot);
      this.o.ibkr?.subscribeRealtime(symbol, barSize);
      if (feed.warmedUp) this.afterWarmUp(symbol, feed, null);
      else void warmUp(this.history, symbol, feed);
    }
    this.scheduleTick();
  }

  /**
   * `preloadReason` null: no warm-up was handed on (a resume), so the preload rung stays down.
   *
   * Without IBKR the cache is the only live rung, so the preload would serve only until the cache's
   * next bar ended it. When the cache is fresh now, it takes over at once: its switch (the log, the
   * trader's `feed` message, the dashboard event, the read of what it holds after the warm-up) is
   * paid here, at the subscription, rather than by every symbol's first live bar, in the same turn
   * as the minute's close (5,000 symbols made that first close several times slower than the next).
   */
  private afterWarmUp(symbol: string, feed: SymbolFeed, preloadReason: string | null): void {
    const now = this.o.clock.now();
    const newest = this.newestCached(symbol);
    if (preloadReason !== null) {
      if (this.o.ibkr === null && this.cacheAge(newest, now) < this.o.cacheMaxAgeMs) feed.ladder.markDown('preload', now, `warm-up delivered (${preloadReason}); the cache serves live bars`);
      else this.record(symbol, feed.ladder.markUp('preload', now, preloadReason));
    }
    // The cache before IBKR history: a rung that comes up second must prove itself to climb over.
    this.checkCacheFreshness(symbol, feed, now, newest);
    if (this.o.ibkr?.connected()) this.record(symbol, feed.ladder.markUp('ibkr-historical', now, 'IBKR connected'));
  }

  /**
   * A collector notice (every key it wrote in one turn), as the arbiter's thread receives it. Each
   * symbol's row comes from its id in the notice (symbol-rows.ts: one typed-array read, no string
   * lookup); a notice without ids is looked up by symbol. Then as onBarsWritten, per symbol.
   */
  onWritten(msg: CollectorToArbiter): void {
    if (msg.barSize !== this.barSize) return;
    const { symbols, counts, starts, sources, ids } = msg;
    const rows = this.rows;
    const byId = ids !== undefined && msg.epoch !== undefined;
    if (byId) rows.use(msg.epoch!, this.table);
    this.noticeSnapshotFresh = false;
    let at = 0;
    for (let i = 0; i < symbols.length; i++) {
      const n = counts[i];
      const slot = byId ? rows.slotOf(ids![i], symbols[i], this.slots) : (this.slots.get(symbols[i]) ?? -1);
      if (slot >= 0) this.written(slot, symbols[i], starts, at, at + n, sources);
      at += n;
    }
  }

  /**
   * The collector wrote these keys (`starts[from..to)`). Hot path: allocates nothing per bar. With
   * `sources` (the source code the cache held for each key when the write committed, -1 unknown)
   * the next bar is handed on without reading it back: the collector announces only committed
   * writes, and the trader reads the bar itself. Without, the bar is read from the cache.
   */
  onBarsWritten(barSize: BarSize, symbol: string, starts: readonly number[], from = 0, to = starts.length, sources?: readonly number[]): void {
    const slot = this.slots.get(symbol);
    if (slot === undefined || barSize !== this.barSize) return;
    this.noticeSnapshotFresh = false;
    this.written(slot, symbol, starts, from, to, sources);
  }

  /** One symbol's keys of a notice, its row known: one 32-byte record of the table (feed-table.ts), no per-symbol objects. */
  private written(slot: number, symbol: string, starts: readonly number[], from: number, to: number, sources: readonly number[] | undefined): void {
    const t = this.table;
    const rec = slot * I32_PER_SLOT + FLAGS;
    if ((t.i32[rec] & WARMED_UP) === 0) {
      void warmUp(this.history, symbol, this.feedAt[slot]);
      return;
    }
    const now = this.o.clock.now();
    const size = this.barMs;
    let newest = -Infinity;
    let at = -1;
    for (let i = from; i < to; i++) {
      if (starts[i] > newest) {
        newest = starts[i];
        at = i;
      }
    }
    // A fresh write shows the collector is alive, even when another rung already handed that bar on.
    // The common case (the cache serves and stays) is counted in the table; any other asks the ladder.
    if (now - (newest + size) < this.o.cacheMaxAgeMs && !countFreshIfServing(t, slot, CACHE)) {
      this.record(symbol, this.feedAt[slot].ladder.freshBar('cache', now), newest);
    }
    const last = t.f64[slot * F64_PER_SLOT];
    if (newest <= last || servingOf(t.i32[rec]) !== CACHE) return;
    const held = sources === undefined ? -1 : sources[at];
    // The next bar with its source known from the write: handed on without a read.
    if (held >= 0 && newest - last <= size) this.hand(slot, symbol, newest, held, CACHE);
    else {
      // A read (a hole after a minute without a bar, or no source said): the write this notice
      // announces was committed in another thread, maybe after this thread's read snapshot was
      // taken (lmdb-js keeps one per event-loop turn; `range` does not retry a miss as `readInto`
      // does). Renewed once per notice, or the bar waited for the next tick.
      if (!this.noticeSnapshotFresh) {
        this.o.store.refresh();
        this.noticeSnapshotFresh = true;
      }
      this.deliverThrough(symbol, this.feedAt[slot], newest, 'cache', newest, held);
    }
  }

  /** A bar from IBKR real-time bars: written to the cache, then handed on if that rung serves. */
  async onRealtimeBar(bar: Bar): Promise<void> {
    const feed = this.feed(bar.symbol);
    if (!feed || bar.barSize !== this.barSize) return;
    await this.o.store.put(bar);
    if (this.feed(bar.symbol) !== feed || !feed.warmedUp) return;
    const now = this.o.clock.now();
    this.record(bar.symbol, feed.ladder.freshBar('ibkr-realtime', now), bar.start);
    if (feed.ladder.serving === 'ibkr-realtime') this.deliverThrough(bar.symbol, feed, bar.start, 'ibkr-realtime');
  }

  /** IBKR refused or lost real-time bars for a symbol (420, 354, 10168, a stall). */
  onRealtimeDown(symbol: string, reason: string, stall = false): void {
    const feed = this.feed(symbol);
    if (!feed) return;
    if (stall) this.stalls++;
    this.record(symbol, feed.ladder.markDown('ibkr-realtime', this.o.clock.now(), reason));
  }

  /** IBKR refused historical data for a symbol. */
  onHistoricalDown(symbol: string, reason: string): void {
    const feed = this.feed(symbol);
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
    for (const feed of this.feedAt) {
      const symbol = feed.symbol;
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
   * case (the next bar) is one synchronous read, or none when the writer said which source the cache
   * holds for it (`heldSource`); a hole is filled from the cache. Bars other than
   * `trigger` (the bar that caused this delivery) handed on here count as holes filled.
   */
  private deliverThrough(symbol: string, feed: SymbolFeed, through: number, rung: Rung, trigger = through, heldSource = -1): void {
    const size = this.barSize!;
    const sizeMs = this.barMs;
    const view = this.view;
    const code = rungCode(rung);
    if (through !== Infinity && through - feed.lastDelivered <= sizeMs) {
      // The next bar: its source known from the write (no read), else one synchronous read.
      if (heldSource >= 0) this.hand(feed.slot, symbol, through, heldSource, code);
      else if (this.o.store.readInto(symbol, size, through, view)) this.hand(feed.slot, symbol, view.start, view.sourceCode, code);
      return;
    }
    const from = feed.lastDelivered === -Infinity ? this.o.clock.now() - Math.max(1, this.o.preloadBars) * sizeMs : feed.lastDelivered + 1;
    const to = through === Infinity ? this.o.clock.now() : through;
    // Rare path (a switch, or a rung that skipped bars): objects are fine here.
    for (const bar of this.o.store.range(symbol, size, from, to)) {
      if (this.hand(feed.slot, symbol, bar.start, BAR_SOURCE_CODE[bar.source], code) && bar.start !== trigger) this.holesFilled++;
    }
  }

  /** Hands one bar's key to the trader unless it is not after the last one; true when handed. */
  private hand(slot: number, symbol: string, start: number, sourceCode: number, rung: number): boolean {
    const t = this.table;
    const pos = slot * F64_PER_SLOT;
    if (start <= t.f64[pos]) return false;
    t.f64[pos] = start;
    this.deliveredByRung[rung]++;
    const msg = this.barMsg;
    msg.symbol = symbol;
    msg.barSize = this.barSize!;
    msg.start = start;
    msg.source = SOURCE_BY_CODE[sourceCode] ?? 'sim';
    this.o.send(msg);
    this.o.onDelivered?.(msg, LADDER[rung]);
    this.checkpoints.markDirty(t, slot);
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
    const feed = this.feed(symbol);
    // A new rung may already hold bars the old one never handed on.
    if (feed?.warmedUp && sw.to && sw.to !== 'preload' && sw.to !== 'ibkr-historical') this.deliverThrough(symbol, feed, Infinity, sw.to, trigger);
  }

  private scheduleTick(): void {
    this.tickTimer?.cancel();
    const period = Math.min(5_000, Math.max(250, this.barMs / 12));
    this.tickTimer = this.o.clock.setTimeout(() => {
      this.tick();
      if (this.feedAt.length > 0) this.scheduleTick();
    }, period);
  }

  /**
   * Periodic: cache freshness, the historical rung's polling, late warm-ups. Each symbol costs a
   * cache read, so a large subscription is scanned TICK_SLICE symbols per event-loop turn: a
   * collector notice that arrives meanwhile (a minute's close) waits for one slice, not for 5,000
   * reads. A scan still under way when the next tick comes is not started twice.
   */
  tick(): void {
    if (this.scanFeeds === this.feedAt && this.scanAt < this.feedAt.length) return;
    this.scanFeeds = this.feedAt;
    this.scanAt = 0;
    this.tickSlice();
  }

  private readonly tickSlice = (): void => {
    const feeds = this.scanFeeds;
    // Unsubscribed, resubscribed or shut down meanwhile: the new subscription's own tick scans it.
    if (feeds !== this.feedAt || this.scanAt >= feeds.length) {
      this.scanAt = Infinity;
      return;
    }
    const now = this.o.clock.now();
    const ibkrUp = this.o.ibkr?.connected() ?? false;
    // See every commit made so far (another thread's writes), not this turn's snapshot.
    this.o.store.refresh();
    const end = Math.min(feeds.length, this.scanAt + TICK_SLICE);
    for (let i = this.scanAt; i < end; i++) this.tickFeed(feeds[i], now, ibkrUp);
    this.scanAt = end;
    if (end < feeds.length) setImmediate(this.tickSlice);
  };

  private tickFeed(feed: SymbolFeed, now: number, ibkrUp: boolean): void {
    const symbol = feed.symbol;
    if (!feed.warmedUp) {
      const askIbkr = ibkrUp && now - feed.lastHistoricalPoll >= this.o.historicalPollMs;
      if (!feed.warming && (askIbkr || this.o.store.latestInto(symbol, this.barSize!, this.view))) void warmUp(this.history, symbol, feed);
      return;
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
    if (serving === 'ibkr-historical' || (waitingOnPreload && ladder.isUp('ibkr-historical'))) void pollHistorical(this.history, symbol, feed, now);
  }

  /** The start of the cache's newest bar for the symbol (one read), -Infinity when it has none. */
  private newestCached(symbol: string): number {
    return this.o.store.latestInto(symbol, this.barSize!, this.view) ? this.view.start : -Infinity;
  }

  /** How long ago the bar starting at `newest` ended (Infinity for none); fresh under cacheMaxAgeMs. */
  private cacheAge(newest: number, now: number): number {
    return now - (newest + this.barMs);
  }

  /** Marks the cache rung up or down by the age of its newest bar (`newest`: its start, when already read); returns that start. */
  private checkCacheFreshness(symbol: string, feed: SymbolFeed, now: number, newest = this.newestCached(symbol)): number {
    if (newest === -Infinity) {
      this.record(symbol, feed.ladder.markDown('cache', now, 'the cache has no bars for this symbol'));
      return -Infinity;
    }
    const age = this.cacheAge(newest, now);
    if (age >= this.o.cacheMaxAgeMs) {
      this.record(symbol, feed.ladder.markDown('cache', now, `stale: newest cached bar ended ${Math.round(age / 1000)} s ago`));
    } else if (!feed.ladder.isUp('cache')) {
      this.record(symbol, feed.ladder.markUp('cache', now, 'fresh bars in the cache'));
    }
    return newest;
  }

  async shutdown(): Promise<void> {
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    this.scanAt = Infinity;
    await this.checkpoints.flush();
  }

  private counts(): ArbiterCounts {
    return {
      barSize: this.barSize,
      switches: this.switches,
      switchCounts: this.switchCounts,
      deliveredByRung: Object.fromEntries(LADDER.flatMap((rung, i) => (this.deliveredByRung[i] > 0 ? [[rung, this.deliveredByRung[i]]] : []))),
      holesFilled: this.holesFilled,
      stalls: this.stalls,
      ibkrEnabled: this.o.ibkr !== null,
      ibkrConnection: this.ibkrConnection,
      ibkrErrors: this.ibkrErrors,
    };
  }

  status(): ArbiterStatus {
    return arbiterStatus(this.feedAt, this.counts());
  }

  metrics(): MetricSample[] {
    return arbiterMetrics(this.feedAt, this.counts());
  }
}
