/**
 * The collector's real-time path: a vendor's WebSocket stream of minute bars into the cache.
 *
 * The collector owns the REST path and the cache writes; this module owns the stream of the source
 * the collector is on, and hands every streamed bar to the collector's own write (the same checks,
 * the same dedup, the same message to the arbiter as a REST bar). REST stays the safety net:
 *
 * - After every connect and reconnect, streamed bars are held (in memory, in order) until a REST
 *   cycle has filled the span since the last bar the cache got: the arbiter hands the trader every
 *   cached bar after the last one it delivered up to the newest it is told about, so a streamed bar
 *   announced before the gap is filled would make it skip the gap for good.
 * - While the stream is down (dropped, stalled, refused) the mode is `rest` and the collector polls
 *   on its normal schedule; while it is live the mode is `stream` and REST only reconciles (late and
 *   corrected bars, missed bars) on the slower reconciliation cadence.
 * - A stream silent for `stallAfterMs` inside the regular session is stalled: it is dropped and
 *   reconnected (the bar stream's backoff), REST filling meanwhile. Consecutive stalls with no bar in
 *   between double the wait, up to 8 times.
 * - Final failures get one answer each: the key refused (Massive auth_failed, Alpaca 402) fails over
 *   exactly as a REST refusal does; another connection holding the key (Massive max_connections,
 *   Alpaca 406), a plan without the feed (409) or too many symbols (405) leave the source on REST,
 *   with the vendor's words in `reason` (status) and in the collector's errors. A first connection
 *   that cannot be opened (network) is retried with backoff.
 * - A streamed bar and the REST bar of the same minute that differ in OHLC or volume count as a
 *   divergence (metrics; stream-divergence.ts). Status and metrics are built in stream-health.ts.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStream, StreamFailureKind, StreamState, StreamStatus } from '../../sources/massive/bar-stream.ts';
import type { SourceError, SourceName } from '../../sources/types.ts';
import { StreamBatches } from './stream-batches.ts';
import { StreamDivergence } from './stream-divergence.ts';
import { type HealthSnapshot, newStreamRec, type StreamHealth, type StreamMode, type StreamRec, streamHealth, streamMetrics } from './stream-health.ts';

export type { StreamHealth, StreamMode } from './stream-health.ts';

export interface StreamIngestOptions {
  clock: Clock;
  log: Logger;
  calendar: MarketCalendar;
  /** A new stream client per source whose `websocket` setting is on. */
  streams: Partial<Record<SourceName, () => BarStream>>;
  /** A live stream silent this long inside the regular session is stalled; default 3 minutes. */
  stallAfterMs?: number;
  /** First retry of a connection that could not be opened; doubles to 60 s. Default 1 s. */
  retryMs?: number;
  /** The collector's write: checks, dedups, stores and tells the arbiter. */
  write(source: SourceName, bars: Bar[]): Promise<void>;
  /** Runs a REST cycle covering everything up to `since` (the connection came up); resolves when done. */
  fill(since: number): Promise<void>;
  /** The vendor refused the key on the stream: fail over as a REST refusal does. */
  refused(source: SourceName, err: SourceError): void;
  /** Something the user must see in the collector's errors (final stream failures, stalls). */
  report(source: SourceName, err: SourceError | Error): void;
  /** The mode of the active source changed: the collector reschedules its REST cycles. */
  modeChanged(mode: StreamMode): void;
}

const MIN = 60_000;

export class StreamIngest {
  private readonly recs = new Map<SourceName, StreamRec>();
  private source: SourceName | null = null;
  private stream: BarStream | null = null;
  private symbols: string[] = [];
  private barSize: BarSize = '1Min';
  private liveAt = 0;
  private readonly batches: StreamBatches;
  private stallTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private retryDelay: number;
  private consecutiveStalls = 0;
  private readonly stallAfterMs: number;
  private readonly retryMs: number;
  private readonly divergence: StreamDivergence;
  /** Frames of each stream already added to its source's count. */
  private readonly seen = new WeakMap<BarStream, number>();
  private readonly barsStreamed: Partial<Record<SourceName, number>> = {};
  private readonly malformedBase: Partial<Record<SourceName, number>> = {};
  private currentMode: StreamMode = 'rest';
  private closed = false;

  constructor(private readonly o: StreamIngestOptions) {
    this.stallAfterMs = o.stallAfterMs ?? 3 * MIN;
    this.retryMs = o.retryMs ?? 1_000;
    this.retryDelay = this.retryMs;
    this.divergence = new StreamDivergence(o.log);
    this.batches = new StreamBatches(o.write, o.log);
    for (const name of Object.keys(o.streams) as SourceName[]) {
      this.recs.set(name, newStreamRec());
    }
  }

  /** True when some source has a stream configured. */
  get configured(): boolean {
    return this.recs.size > 0;
  }

  get mode(): StreamMode {
    return this.currentMode;
  }

  /**
   * The collector collects `symbols` at `barSize` from `source` (null: stopped). Streams that source
   * when it has a stream; a change of symbols only (un)subscribes, without a reconnect.
   */
  follow(source: SourceName | null, symbols: string[], barSize: BarSize): void {
    if (this.closed) return;
    const prevSymbols = this.symbols;
    this.symbols = [...symbols];
    this.barSize = barSize;
    const wanted = source !== null && this.o.streams[source] && barSize === '1Min' && symbols.length > 0 ? source : null;
    if (wanted !== null && wanted === this.source && this.stream) {
      const now = new Set(symbols);
      const before = new Set(prevSymbols);
      const added = symbols.filter((s) => !before.has(s));
      const removed = prevSymbols.filter((s) => !now.has(s));
      if (removed.length > 0) this.stream.unsubscribe(removed);
      if (added.length > 0) this.stream.subscribe(added);
      return;
    }
    const rec = wanted ? this.recs.get(wanted)! : null;
    if (wanted !== null && wanted === this.source && rec && rec.failed !== null) {
      // Closed for good on this source: only a different set of symbols can change a 405's answer.
      const changed = prevSymbols.length !== symbols.length || prevSymbols.some((s, i) => s !== symbols[i]);
      if (!(rec.failed === 'symbol_limit' && changed)) return;
    }
    this.closeStream();
    this.source = wanted;
    for (const [name, r] of this.recs) {
      if (name !== wanted && r.state !== 'off') this.setState(r, 'off');
      if (name !== wanted) r.failed = null;
    }
    if (barSize !== '1Min' && source !== null && this.o.streams[source]) {
      this.recs.get(source)!.reason = `streams carry 1Min bars; ${barSize} is collected over REST`;
    }
    if (wanted === null) {
      this.setMode('rest');
      return;
    }
    rec!.failed = null;
    rec!.reason = null;
    this.retryDelay = this.retryMs;
    this.open(wanted);
  }

  /** Closes the stream for good (collector stop or shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const s = this.closeStream();
    this.setMode('rest');
    await s;
    await this.batches.idle();
  }

  /** Closes the stream of the collector's stop; `follow` opens it again. */
  async pause(): Promise<void> {
    const s = this.closeStream();
    this.source = null;
    for (const r of this.recs.values()) if (r.state !== 'off') this.setState(r, 'off');
    this.setMode('rest');
    await s;
    await this.batches.idle();
  }

  /** REST bars just fetched: a minute the stream sent with other OHLC or volume is a divergence. */
  observeRest(source: SourceName, bars: readonly Bar[]): void {
    this.divergence.observeRest(source, bars);
  }

  health(): Partial<Record<SourceName, StreamHealth>> {
    if (this.stream && this.source) this.syncCounters(this.source, this.stream);
    return streamHealth(this.snapshot());
  }

  metrics(): MetricSample[] {
    return streamMetrics(this.snapshot());
  }

  private snapshot(): HealthSnapshot {
    return {
      recs: this.recs,
      source: this.source,
      stream: this.stream,
      mode: this.currentMode,
      barsStreamed: this.barsStreamed,
      malformedBase: this.malformedBase,
      divergences: (source) => this.divergence.count(source),
    };
  }

  // ---- the stream ----

  private open(source: SourceName): void {
    const rec = this.recs.get(source)!;
    let stream: BarStream;
    try {
      stream = this.o.streams[source]!();
    } catch (err) {
      rec.reason = (err as Error).message;
      this.setState(rec, 'failed');
      this.o.report(source, err as Error);
      this.setMode('rest');
      return;
    }
    this.stream = stream;
    stream.on('bar', (bar) => {
      if (this.stream === stream) this.onBar(source, bar);
    });
    stream.on('status', (st) => {
      if (this.stream === stream) this.onStatus(source, stream, st);
    });
    stream.on('error', (err) => {
      if (this.stream === stream) this.onFinal(source, err);
    });
    try {
      stream.subscribe(this.symbols);
    } catch (err) {
      rec.reason = (err as Error).message;
      this.o.report(source, err as Error);
    }
    stream.connect().then(
      () => undefined,
      (err: SourceError & { kind?: StreamFailureKind }) => {
        if (this.stream !== stream) return;
        if (err.kind) return this.onFinal(source, err);
        if (err.code === 'ABORTED') return;
        // The first connection could not be opened: REST meanwhile, and try again with backoff.
        rec.reason = err.message;
        this.o.log.warn({ source, message: err.message, retry_ms: this.retryDelay }, 'stream could not connect; polling REST meanwhile');
        this.setMode('rest');
        this.detach(stream);
        this.stream = null;
        const delay = this.retryDelay;
        this.retryDelay = Math.min(60_000, this.retryDelay * 2);
        rec.reconnects++;
        this.retryTimer = this.o.clock.setTimeout(() => {
          this.retryTimer = undefined;
          if (!this.closed && this.source === source && !this.stream) this.open(source);
        }, delay);
      },
    );
  }

  private onStatus(source: SourceName, stream: BarStream, st: StreamStatus): void {
    const rec = this.recs.get(source)!;
    this.syncCounters(source, stream);
    if (st.state === 'reconnecting' && st.attempt !== undefined) rec.reconnects++;
    if (st.state !== rec.state) this.setState(rec, st.state);
    if (st.state === 'live') {
      rec.reason = null;
      this.retryDelay = this.retryMs;
      this.liveAt = this.o.clock.now();
      this.startStallWatch(source, stream);
      this.holdUntilFilled(source);
      this.setMode('stream');
    } else if (st.state === 'reconnecting' || st.state === 'failed' || st.state === 'closed') {
      if (st.message) rec.reason = `${source} stream ${st.state}: ${st.message}`;
      this.stopStallWatch();
      this.setMode('rest');
    }
  }

  private onFinal(source: SourceName, err: SourceError & { kind?: StreamFailureKind }): void {
    const rec = this.recs.get(source)!;
    const kind = err.kind ?? null;
    rec.failed = kind ?? 'evicted';
    rec.reason = `${err.message}; collecting over REST`;
    this.stopStallWatch();
    this.setState(rec, 'failed');
    this.setMode('rest');
    const stream = this.stream;
    if (stream) {
      this.detach(stream);
      this.stream = null;
      void stream.close();
    }
    this.o.log.warn({ source, kind, message: err.message, vendor_message: err.vendorMessage }, 'stream refused; collecting over REST');
    if (kind === 'auth') this.o.refused(source, err);
    else this.o.report(source, err);
  }

  private onBar(source: SourceName, bar: Bar): void {
    this.barsStreamed[source] = (this.barsStreamed[source] ?? 0) + 1;
    this.consecutiveStalls = 0;
    if (bar.barSize !== this.barSize) return;
    this.divergence.remember(source, bar);
    this.batches.add(source, bar);
  }

  private holdUntilFilled(source: SourceName): void {
    this.batches.hold();
    const since = this.liveAt;
    void this.o
      .fill(since)
      .catch((err: unknown) => this.o.log.warn({ source, err: (err as Error).message }, 'REST fill after the stream connected failed'))
      .finally(() => {
        if (this.liveAt !== since) return; // another (re)connect holds again
        this.batches.release(source, this.source === source);
      });
  }

  private startStallWatch(source: SourceName, stream: BarStream): void {
    this.stopStallWatch();
    const limit = this.stallAfterMs * 2 ** Math.min(3, this.consecutiveStalls);
    const check = () => {
      this.stallTimer = undefined;
      if (this.stream !== stream || stream.state !== 'live') return;
      const now = this.o.clock.now();
      const rec = this.recs.get(source)!;
      this.syncCounters(source, stream);
      const last = Math.max(rec.lastMessageAt, this.liveAt);
      if (now - last >= limit && this.o.calendar.isRegularHours(now)) {
        rec.stalls++;
        this.consecutiveStalls++;
        const why = `stalled: no message for ${Math.round((now - last) / 1000)} s in session`;
        rec.reason = `${source} stream ${why}; reconnecting, REST meanwhile`;
        this.o.log.warn({ source, silent_ms: now - last }, 'stream stalled; reconnecting');
        stream.forceReconnect(why);
        return;
      }
      this.stallTimer = this.o.clock.setTimeout(check, Math.max(1_000, Math.min(limit, last + limit - now)));
    };
    this.stallTimer = this.o.clock.setTimeout(check, limit);
  }

  private stopStallWatch(): void {
    this.stallTimer?.cancel();
    this.stallTimer = undefined;
  }

  private syncCounters(source: SourceName, stream: BarStream): void {
    const rec = this.recs.get(source)!;
    rec.messages += stream.counters.messages - (this.seen.get(stream) ?? 0);
    this.seen.set(stream, stream.counters.messages);
    rec.lastMessageAt = Math.max(rec.lastMessageAt, stream.counters.lastMessageAt);
  }

  private detach(stream: BarStream): void {
    const source = stream.source as SourceName;
    this.syncCounters(source, stream);
    this.malformedBase[source] = (this.malformedBase[source] ?? 0) + stream.counters.malformed;
    stream.removeAllListeners('bar');
    stream.removeAllListeners('status');
    stream.removeAllListeners('error');
  }

  private closeStream(): Promise<void> {
    this.stopStallWatch();
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.batches.drop();
    const stream = this.stream;
    this.stream = null;
    if (!stream) return Promise.resolve();
    this.detach(stream);
    const rec = this.recs.get(stream.source as SourceName);
    if (rec && rec.failed === null) this.setState(rec, 'closed');
    return stream.close().catch(() => undefined);
  }

  private setState(rec: StreamRec, state: StreamState | 'off'): void {
    rec.state = state;
    rec.since = this.o.clock.now();
  }

  private setMode(mode: StreamMode): void {
    if (mode === this.currentMode) return;
    this.currentMode = mode;
    this.o.modeChanged(mode);
  }
}
