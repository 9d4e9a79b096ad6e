/**
 * IBKR market data for the feed ladder: real-time 5-second bars aggregated to the requested bar
 * size, and paced historical bars.
 *
 * Per symbol a subscription moves through: pending (requested, no bar yet) → streaming →
 * stalled (nothing for `stallIntervals` × 5 s while the market is open and TWS is connected:
 * the stream is dead even if the socket looks fine, so it is re-requested with backoff) or
 * unavailable (420/354/10168: retried slowly, 60 s doubling to 10 min, never hammered) or
 * bad-contract (200: terminal, reported once). The first bar after stalled/unavailable emits
 * `recovered`.
 *
 * Connection events: socket reconnect → every active subscription is requested again (plain
 * IBApi restores nothing); 1100 → paused (no stall alarms); 1101 → everything resubscribed;
 * 1102 → carry on. Farm-broken notices (2103/2105/2157) are counted; a stream they kill is caught
 * by stall detection.
 *
 * Time is the injected clock's: one timer every `tickMs` flushes bars whose last 5 s bar never
 * came (after the aggregation grace) and checks for stalls.
 */
import { EventEmitter } from 'node:events';
import { EventName, WhatToShow } from '@stoqey/ib';
import type { Bar } from '../../market/bar.ts';
import { isValidSymbol } from '../../market/bar.ts';
import { isBarSize, type BarSize } from '../../market/bar-size.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { IbkrConnection, type IbkrConnectionState, type IbkrConnectionTuning, type IbRequestError, type IbNotice, type IbkrEndpoint } from './connection.ts';
import { stockContract } from './contract.ts';
import { IbkrError } from './errors.ts';
import { HistoricalFetcher } from './historical-fetch.ts';
import { HistoricalPacer } from './historical-pacer.ts';
import { barArrived, newSubscription, requestRefused, type Retry, type Subscription, stallCheck } from './realtime-subscription.ts';

import type { IbkrDataFeedEvents, IbkrDataFeedOptions, IbkrDataFeedStatus } from './data-feed-types.ts';

export type { IbkrDataFeedEvents, IbkrDataFeedOptions, IbkrDataFeedStatus, RealtimeState, RealtimeStatus } from './data-feed-types.ts';

const FIVE_SECONDS = 5_000;

export class IbkrDataFeed extends EventEmitter<IbkrDataFeedEvents> {
  readonly connection: IbkrConnection;
  private readonly clock: Clock;
  private readonly ownsConnection: boolean;
  private readonly stallMs: number;
  private readonly graceMs: number;
  private readonly tickMs: number;
  private readonly isMarketOpen: (ts: number) => boolean;
  private readonly unavailableRetry: Retry;
  private readonly stallRetry: Retry;
  private readonly useRTH: boolean;
  private readonly pacer: HistoricalPacer;
  private readonly historical: HistoricalFetcher;
  private readonly subs = new Map<string, Subscription>();
  private readonly byReqId = new Map<number, Subscription>();
  private ticker?: TimerHandle;
  private closed = false;
  private readonly detach: () => void;

  /** A feed on its own connection to `endpoint` (closed with the feed). */
  static create(endpoint: IbkrEndpoint, clock: Clock, opts: Omit<IbkrDataFeedOptions, 'connection' | 'clock'> & { connectionOptions?: IbkrConnectionTuning } = {}): IbkrDataFeed {
    const { connectionOptions, ...feedOpts } = opts;
    const connection = new IbkrConnection({ ...connectionOptions, ...endpoint, clock });
    return new IbkrDataFeed({ ...feedOpts, connection, clock, ownsConnection: true });
  }

  constructor(opts: IbkrDataFeedOptions) {
    super();
    const stallIntervals = opts.stallIntervals ?? 3;
    if (!(Number.isInteger(stallIntervals) && stallIntervals >= 1)) {
      throw new IbkrError('IBKR_BAD_INPUT', `stallIntervals must be an integer >= 1, got ${stallIntervals}`);
    }
    this.connection = opts.connection;
    this.clock = opts.clock;
    this.ownsConnection = opts.ownsConnection ?? false;
    this.stallMs = stallIntervals * FIVE_SECONDS;
    this.graceMs = opts.graceMs ?? 2_000;
    this.tickMs = opts.tickMs ?? 1_000;
    this.isMarketOpen = opts.isMarketOpen ?? (() => true);
    this.unavailableRetry = { initialMs: opts.unavailableRetry?.initialMs ?? 60_000, maxMs: opts.unavailableRetry?.maxMs ?? 600_000 };
    this.stallRetry = { initialMs: opts.stallRetry?.initialMs ?? 30_000, maxMs: opts.stallRetry?.maxMs ?? 300_000 };
    this.useRTH = opts.useRTH ?? false;
    this.pacer = opts.pacer ?? new HistoricalPacer(this.clock);
    this.historical = new HistoricalFetcher(this.connection, this.clock, this.pacer, opts.historical);

    const onBar = (reqId: number, time: number, open: number, high: number, low: number, close: number, volume: number | undefined, wap: number | undefined, count: number | undefined) =>
      this.onRealtimeBar(reqId, time, open, high, low, close, volume, wap, count);
    const onReady = () => this.requestAll();
    const onState = (state: IbkrConnectionState) => this.onConnectionState(state);
    const onRequestError = (e: IbRequestError) => this.onRequestError(e);
    const onNotice = (n: IbNotice) => this.onNotice(n);
    this.connection.api.on(EventName.realtimeBar, onBar);
    this.connection.on('ready', onReady);
    this.connection.on('state', onState);
    this.connection.on('requestError', onRequestError);
    this.connection.on('notice', onNotice);
    this.detach = () => {
      this.connection.api.off(EventName.realtimeBar, onBar);
      this.connection.off('ready', onReady);
      this.connection.off('state', onState);
      this.connection.off('requestError', onRequestError);
      this.connection.off('notice', onNotice);
    };
  }

  /** Connects (if not yet) and starts the flush/stall timer. */
  start(): void {
    if (this.closed) throw new IbkrError('IBKR_CLOSED', 'the IBKR data feed is closed');
    this.connection.start();
    this.scheduleTick();
  }

  /**
   * Streams `symbol` as `barSize` bars. Idempotent for the same bar size; another bar size
   * replaces the subscription.
   */
  subscribeRealtime(symbol: string, barSize: BarSize): void {
    if (this.closed) throw new IbkrError('IBKR_CLOSED', 'the IBKR data feed is closed');
    if (!isValidSymbol(symbol)) throw new IbkrError('IBKR_BAD_INPUT', `symbol must be an upper-case ticker such as QQQ or BRK.B, got ${JSON.stringify(symbol)}`);
    if (!isBarSize(barSize)) throw new IbkrError('IBKR_BAD_INPUT', `barSize must be one of 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day, got ${JSON.stringify(barSize)}`);
    const existing = this.subs.get(symbol);
    if (existing?.barSize === barSize) return;
    if (existing) this.unsubscribe(symbol);
    const sub = newSubscription(symbol, barSize, this.graceMs, this.clock.now(), this.unavailableRetry, this.stallRetry);
    this.subs.set(symbol, sub);
    if (this.connection.isReady) this.request(sub);
    this.scheduleTick();
  }

  unsubscribe(symbol: string): void {
    const sub = this.subs.get(symbol);
    if (!sub) return;
    sub.retryTimer?.cancel();
    this.cancelLive(sub);
    this.subs.delete(symbol);
  }

  /** Symbols with a real-time subscription. */
  subscribed(): string[] {
    return [...this.subs.keys()];
  }

  /**
   * Complete bars with from <= start < to (UTC epoch ms), oldest first, from `reqHistoricalData`
   * within IB's pacing rules. Rejects with IbkrError.
   */
  fetchHistorical(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    if (this.closed) return Promise.reject(new IbkrError('IBKR_CLOSED', 'the IBKR data feed is closed'));
    if (!isValidSymbol(symbol)) return Promise.reject(new IbkrError('IBKR_BAD_INPUT', `symbol must be an upper-case ticker, got ${JSON.stringify(symbol)}`));
    if (!isBarSize(barSize)) return Promise.reject(new IbkrError('IBKR_BAD_INPUT', `barSize must be one of 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day, got ${JSON.stringify(barSize)}`));
    if (!(Number.isFinite(from) && Number.isFinite(to) && from < to)) {
      return Promise.reject(new IbkrError('IBKR_BAD_INPUT', `from must be before to (UTC epoch ms), got from=${from} to=${to}`));
    }
    return this.historical.fetch(symbol, barSize, from, to, signal);
  }

  status(): IbkrDataFeedStatus {
    return {
      connection: this.connection.state,
      realtime: [...this.subs.values()].map((s) => ({
        symbol: s.symbol,
        barSize: s.barSize,
        state: s.state,
        lastBarAt: s.lastBarAt,
        requests: s.requests,
        lastError: s.lastError,
      })),
      historical: { ...this.historical.stats(), pacer: this.pacer.stats() },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ticker?.cancel();
    for (const symbol of [...this.subs.keys()]) this.unsubscribe(symbol);
    this.historical.close();
    this.pacer.close();
    this.detach();
    if (this.ownsConnection) await this.connection.close();
  }

  // ---- real-time -----------------------------------------------------------------------------

  private request(sub: Subscription): void {
    this.cancelLive(sub);
    const reqId = this.connection.nextRequestId();
    sub.reqId = reqId;
    sub.requests++;
    sub.watchFrom = this.clock.now();
    this.byReqId.set(reqId, sub);
    this.connection.api.reqRealTimeBars(reqId, stockContract(sub.symbol), 5, WhatToShow.TRADES, this.useRTH);
  }

  private cancelLive(sub: Subscription): void {
    if (sub.reqId === undefined) return;
    this.byReqId.delete(sub.reqId);
    if (this.connection.isReady) this.connection.api.cancelRealTimeBars(sub.reqId);
    sub.reqId = undefined;
  }

  /** After a (re)connect or 1101: every subscription not waiting out a retry is requested again. */
  private requestAll(): void {
    for (const sub of this.subs.values()) {
      if (sub.state === 'bad-contract' || sub.retryTimer) continue;
      this.request(sub);
    }
  }

  private onRealtimeBar(reqId: number, time: number, open: number, high: number, low: number, close: number, volume: number | undefined, wap: number | undefined, count: number | undefined): void {
    const sub = this.byReqId.get(reqId);
    if (!sub) return; // a stream we already cancelled
    const now = this.clock.now();
    if (barArrived(sub, now, this.unavailableRetry, this.stallRetry)) this.emit('recovered', sub.symbol);
    const bars = sub.aggregator.push(
      {
        start: time * 1000,
        open,
        high,
        low,
        close,
        volume: volume ?? 0,
        wap: wap !== undefined && wap > 0 ? wap : Number.NaN,
        count: count !== undefined && count >= 0 ? count : -1,
      },
      now,
    );
    for (const b of bars) this.emit('bar', b);
  }

  private onRequestError(e: IbRequestError): void {
    if (this.historical.owns(e.reqId)) {
      this.emit('ibError', e.code, undefined);
      return;
    }
    const sub = this.byReqId.get(e.reqId);
    this.emit('ibError', e.code, sub?.symbol);
    if (!sub) return;
    const kind = e.policy.kind;
    if (kind === 'info' || kind === 'farm-broken' || kind === 'no-data') return;
    // The request is dead on TWS's side: no data follows an error for a reqId.
    this.byReqId.delete(e.reqId);
    const next = requestRefused(sub, e, this.clock.now(), this.unavailableRetry);
    if (next.kind === 'bad-contract') {
      this.emit('unavailable', sub.symbol, e.code, `IBKR does not know the contract STK ${sub.symbol} SMART USD: ${e.message}`);
      return;
    }
    if (next.first) this.emit('unavailable', sub.symbol, e.code, e.message);
    this.scheduleRetry(sub, next.retryMs);
  }

  private scheduleRetry(sub: Subscription, delay: number): void {
    sub.retryTimer?.cancel();
    sub.retryTimer = this.clock.setTimeout(() => {
      sub.retryTimer = undefined;
      if (this.subs.get(sub.symbol) !== sub) return;
      // While disconnected the reconnect's requestAll picks it up.
      if (this.connection.isReady) this.request(sub);
    }, delay);
  }

  private onNotice(n: IbNotice): void {
    this.emit('ibError', n.code, undefined);
    if (n.policy.kind === 'link-restored-data-lost') this.requestAll();
  }

  private onConnectionState(state: IbkrConnectionState): void {
    if (state === 'disconnected' || state === 'closed') {
      // Every stream died with the socket; the next `ready` requests them again.
      for (const sub of this.subs.values()) sub.reqId = undefined;
      this.byReqId.clear();
    }
    this.emit('connection', state);
  }

  // ---- flush and stall checks ----------------------------------------------------------------

  private scheduleTick(): void {
    if (this.ticker || this.closed || this.subs.size === 0) return;
    this.ticker = this.clock.setTimeout(() => {
      this.ticker = undefined;
      this.tick();
      this.scheduleTick();
    }, this.tickMs);
  }

  private tick(): void {
    const now = this.clock.now();
    const watching = this.connection.state === 'connected' && this.isMarketOpen(now);
    for (const sub of this.subs.values()) {
      for (const b of sub.aggregator.flush(now)) this.emit('bar', b);
      if (!watching) {
        // Paused (link lost, disconnected, market closed): silence starts counting when it ends.
        sub.watchFrom = now;
        continue;
      }
      const check = stallCheck(sub, now, this.stallMs, this.stallRetry);
      if (check === 'stall') this.emit('stall', sub.symbol, sub.lastBarAt ?? sub.watchFrom);
      if (check !== 'none') this.request(sub);
    }
  }
}
