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
 *   divergence (metrics). The last 32 streamed minutes per symbol are kept in a fixed ring for it.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStream, StreamFailureKind, StreamState, StreamStatus } from '../../sources/massive/bar-stream.ts';
import type { SourceError, SourceName } from '../../sources/types.ts';

export type StreamMode = 'stream' | 'rest';

/** One source's stream in /data-collector/status (snake_case, ISO times). */
export interface StreamHealth {
  /** `off` while the collector is not on this source (or collects another bar size). */
  state: StreamState | 'off';
  /** When `state` last changed. */
  since: string | null;
  messages: number;
  last_message_at: string | null;
  reconnects: number;
  stalls: number;
  /** Symbols subscribed on the stream. */
  subscribed: string[];
  /** `stream` while bars come from the stream, `rest` while the collector polls. */
  mode: StreamMode;
  /** Why the mode is `rest` while the stream is configured (the vendor's words when it sent some). */
  reason: string | null;
}

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

const RING = 32;
const MIN = 60_000;

interface Rec {
  state: StreamState | 'off';
  since: number | null;
  messages: number;
  lastMessageAt: number;
  reconnects: number;
  stalls: number;
  reason: string | null;
  /** A final failure that keeps the stream closed until the symbols change (405) or a restart. */
  failed: StreamFailureKind | null;
}

/** Streamed values of recent minutes per symbol: [start, open, high, low, close, volume] x RING. */
type Ring = Float64Array;

export class StreamIngest {
  private readonly recs = new Map<SourceName, Rec>();
  private source: SourceName | null = null;
  private stream: BarStream | null = null;
  private symbols: string[] = [];
  private barSize: BarSize = '1Min';
  private liveAt = 0;
  private holding = false;
  private held: Bar[] = [];
  private pending: Bar[] = [];
  private flushScheduled = false;
  private draining = false;
  private writing: Promise<void> = Promise.resolve();
  private stallTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private retryDelay: number;
  private consecutiveStalls = 0;
  private readonly stallAfterMs: number;
  private readonly retryMs: number;
  private readonly rings = new Map<string, Ring>();
  /** Frames of each stream already added to its source's count. */
  private readonly seen = new WeakMap<BarStream, number>();
  private readonly divergences: Partial<Record<SourceName, number>> = {};
  private readonly barsStreamed: Partial<Record<SourceName, number>> = {};
  private readonly malformedBase: Partial<Record<SourceName, number>> = {};
  private currentMode: StreamMode = 'rest';
  private closed = false;

  constructor(private readonly o: StreamIngestOptions) {
    this.stallAfterMs = o.stallAfterMs ?? 3 * MIN;
    this.retryMs = o.retryMs ?? 1_000;
    this.retryDelay = this.retryMs;
    for (const name of Object.keys(o.streams) as SourceName[]) {
      this.recs.set(name, { state: 'off', since: null, messages: 0, lastMessageAt: 0, reconnects: 0, stalls: 0, reason: null, failed: null });
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
    await this.writing;
  }

  /** Closes the stream of the collector's stop; `follow` opens it again. */
  async pause(): Promise<void> {
    const s = this.closeStream();
    this.source = null;
    for (const r of this.recs.values()) if (r.state !== 'off') this.setState(r, 'off');
    this.setMode('rest');
    await s;
    await this.writing;
  }

  /** REST bars just fetched: a minute the stream sent with other OHLC or volume is a divergence. */
  observeRest(source: SourceName, bars: readonly Bar[]): void {
    if (bars.length === 0 || bars[0].barSize !== '1Min') return;
    for (const b of bars) {
      const ring = this.rings.get(`${source}|${b.symbol}`);
      if (!ring) continue;
      const i = ((b.start / MIN) % RING) * 6;
      if (ring[i] !== b.start) continue;
      if (ring[i + 1] !== b.open || ring[i + 2] !== b.high || ring[i + 3] !== b.low || ring[i + 4] !== b.close || ring[i + 5] !== b.volume) {
        this.divergences[source] = (this.divergences[source] ?? 0) + 1;
        this.o.log.info({ source, symbol: b.symbol, start: new Date(b.start).toISOString() }, 'streamed bar differs from the REST bar; REST replaces it');
      }
      ring[i] = NaN;
    }
  }

  health(): Partial<Record<SourceName, StreamHealth>> {
    const out: Partial<Record<SourceName, StreamHealth>> = {};
    if (this.stream && this.source) this.syncCounters(this.source, this.stream);
    for (const [name, r] of this.recs) {
      const mine = name === this.source && this.stream;
      const lastAt = r.lastMessageAt;
      out[name] = {
        state: r.state,
        since: r.since === null ? null : new Date(r.since).toISOString(),
        messages: r.messages,
        last_message_at: lastAt > 0 ? new Date(lastAt).toISOString() : null,
        reconnects: r.reconnects,
        stalls: r.stalls,
        subscribed: mine ? this.stream!.subscriptions() : [],
        mode: name === this.source ? this.currentMode : 'rest',
        reason: r.reason,
      };
    }
    return out;
  }

  metrics(): MetricSample[] {
    const out: MetricSample[] = [];
    const states: Array<StreamState | 'off'> = ['off', 'idle', 'connecting', 'authenticating', 'live', 'reconnecting', 'closed', 'failed'];
    for (const [source, r] of this.recs) {
      const labels = { source };
      const mine = source === this.source && this.stream;
      out.push(
        { name: 'barkeep_stream_messages_total', help: 'Frames received on the stream', type: 'counter', labels, value: r.messages },
        { name: 'barkeep_stream_bars_total', help: 'Bars received on the stream', type: 'counter', labels, value: this.barsStreamed[source] ?? 0 },
        {
          name: 'barkeep_stream_malformed_total',
          help: 'Stream messages skipped as malformed',
          type: 'counter',
          labels,
          value: (this.malformedBase[source] ?? 0) + (mine ? this.stream!.counters.malformed : 0),
        },
        { name: 'barkeep_stream_reconnects_total', help: 'Stream reconnects', type: 'counter', labels, value: r.reconnects },
        { name: 'barkeep_stream_stalls_total', help: 'Streams found silent in session and reconnected', type: 'counter', labels, value: r.stalls },
        {
          name: 'barkeep_stream_divergences_total',
          help: 'Streamed bars that differ from the REST bar of the same minute',
          type: 'counter',
          labels,
          value: this.divergences[source] ?? 0,
        },
        {
          name: 'barkeep_stream_last_message_timestamp_seconds',
          help: 'When the stream last sent a frame',
          type: 'gauge',
          labels,
          value: r.lastMessageAt / 1000,
        },
        {
          name: 'barkeep_stream_subscribed',
          help: 'Symbols subscribed on the stream',
          type: 'gauge',
          labels,
          value: mine ? this.stream!.subscriptions().length : 0,
        },
        {
          name: 'barkeep_stream_mode',
          help: '1 while bars come from the stream, 0 while the collector polls REST',
          type: 'gauge',
          labels,
          value: source === this.source && this.currentMode === 'stream' ? 1 : 0,
        },
      );
      for (const st of states) {
        out.push({ name: 'barkeep_stream_state', help: 'Stream state (1 for the current one)', type: 'gauge', labels: { source, state: st }, value: r.state === st ? 1 : 0 });
      }
    }
    return out;
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
    this.remember(source, bar);
    if (this.holding) {
      this.held.push(bar);
      return;
    }
    this.pending.push(bar);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush(source));
    }
  }

  /**
   * Writes what arrived in this turn of the event loop as one batch. While a batch is being written,
   * what arrives meanwhile gathers and is written as the next batch when it is done: a burst (every
   * symbol's bar at a minute's close) costs a few transactions, not one per frame or per symbol.
   */
  private flush(source: SourceName): void {
    this.flushScheduled = false;
    if (this.draining || this.pending.length === 0) return;
    this.draining = true;
    this.writing = this.drain(source);
  }

  private async drain(source: SourceName): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const bars = this.pending;
        this.pending = [];
        await this.o.write(source, bars).catch((err: unknown) => {
          this.o.log.warn({ source, err: (err as Error).message }, 'streamed bars not written');
        });
      }
    } finally {
      this.draining = false;
    }
  }

  private holdUntilFilled(source: SourceName): void {
    this.holding = true;
    const since = this.liveAt;
    void this.o
      .fill(since)
      .catch((err: unknown) => this.o.log.warn({ source, err: (err as Error).message }, 'REST fill after the stream connected failed'))
      .finally(() => {
        if (this.liveAt !== since) return; // another (re)connect holds again
        this.holding = false;
        const held = this.held;
        this.held = [];
        if (held.length > 0 && this.source === source) {
          this.pending.push(...held);
          this.flush(source);
        }
      });
  }

  private remember(source: SourceName, b: Bar): void {
    const key = `${source}|${b.symbol}`;
    let ring = this.rings.get(key);
    if (!ring) {
      ring = new Float64Array(RING * 6).fill(NaN);
      this.rings.set(key, ring);
    }
    const i = ((b.start / MIN) % RING) * 6;
    ring[i] = b.start;
    ring[i + 1] = b.open;
    ring[i + 2] = b.high;
    ring[i + 3] = b.low;
    ring[i + 4] = b.close;
    ring[i + 5] = b.volume;
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
    this.holding = false;
    this.held = [];
    const stream = this.stream;
    this.stream = null;
    if (!stream) return Promise.resolve();
    this.detach(stream);
    const rec = this.recs.get(stream.source as SourceName);
    if (rec && rec.failed === null) this.setState(rec, 'closed');
    return stream.close().catch(() => undefined);
  }

  private setState(rec: Rec, state: StreamState | 'off'): void {
    rec.state = state;
    rec.since = this.o.clock.now();
  }

  private setMode(mode: StreamMode): void {
    if (mode === this.currentMode) return;
    this.currentMode = mode;
    this.o.modeChanged(mode);
  }
}
