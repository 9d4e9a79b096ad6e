/**
 * The connection life of a vendor's bar stream, shared by MassiveStream and AlpacaStream:
 * connect → vendor greeting → auth → subscribe → bars, with reconnects on the injected clock.
 *
 * Lifecycle and decisions:
 * - `connect()` resolves once authenticated. It rejects when the first connection fails (AUTH
 *   for bad credentials, UNAVAILABLE otherwise), so a caller can fall back to REST polling at once.
 * - After that, a dropped connection is reopened with exponential backoff (1 s doubling to 30 s),
 *   and the subscriptions are sent again. Status changes are emitted as 'status' events.
 * - An auth failure, an eviction by a newer connection, or a plan without the feed is final: no
 *   reconnect (it would fail again, or evict the other connection in turn); 'error' is emitted.
 * - A ping every 30 s with no pong back since the previous ping counts as a dead connection.
 * - Secrets go in the auth message only; nothing logged or emitted carries them.
 *
 * Subclasses (vendors) only read and write messages; this lives in massive/ for now because the
 * assignment kept shared files to a minimum (it could move to src/sources/).
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { Bar } from '../../market/bar.ts';
import { isValidSymbol } from '../../market/bar.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { silentLogger, type SourceLogger } from '../http.ts';
import { SourceError, type SourceErrorCode } from '../types.ts';
import { backoff } from '../../runtime/backoff.ts';

export type StreamState = 'idle' | 'connecting' | 'authenticating' | 'live' | 'reconnecting' | 'closed' | 'failed';

export interface StreamStatus {
  state: StreamState;
  message?: string;
  /** Reconnect attempt number (1 = first retry). */
  attempt?: number;
  at: number;
}

export interface BarStreamOptions {
  url: string;
  clock: Clock;
  logger?: SourceLogger;
  /** First reconnect delay, doubled per attempt; default 1 000 ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** From opening the socket to `authenticated`; default 10 000 ms. */
  authTimeoutMs?: number;
  /** Ping period; default 30 000 ms. */
  pingMs?: number;
}

export interface BarStreamStats {
  bars: number;
  malformed: number;
  reconnects: number;
  /** Frames received (control and data). */
  messages: number;
  /** When the last frame arrived (clock ms); 0 before the first. */
  lastMessageAt: number;
}

/**
 * Why a stream gave up for good, for the caller's answer: `auth` (the key was refused: fail over as
 * REST does), `evicted` (another connection uses the key), `plan` (the plan lacks the feed),
 * `symbol_limit` (more symbols than the plan streams), `bad_url`.
 */
export type StreamFailureKind = 'auth' | 'evicted' | 'plan' | 'symbol_limit' | 'bad_url';

export abstract class BarStream extends EventEmitter {
  abstract readonly source: 'massive' | 'alpaca';
  readonly counters: BarStreamStats = { bars: 0, malformed: 0, reconnects: 0, messages: 0, lastMessageAt: 0 };

  protected readonly clock: Clock;
  protected readonly logger: SourceLogger;
  private readonly url: string;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly authTimeoutMs: number;
  private readonly pingMs: number;
  private readonly symbols = new Set<string>();
  private ws: WebSocket | undefined;
  private current: StreamState = 'idle';
  private attempt = 0;
  private stopping = false;
  private pending: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private authTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private pingTimer: TimerHandle | undefined;
  private awaitingPong = false;
  private failure: SourceError | undefined;
  private lastSocketError: string | undefined;

  constructor(opts: BarStreamOptions) {
    super();
    this.url = opts.url;
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.backoffMs = opts.backoffMs ?? 1_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.authTimeoutMs = opts.authTimeoutMs ?? 10_000;
    this.pingMs = opts.pingMs ?? 30_000;
  }

  override on(event: 'bar', listener: (bar: Bar) => void): this;
  override on(event: 'status', listener: (status: StreamStatus) => void): this;
  override on(event: 'error', listener: (err: SourceError) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  get state(): StreamState {
    return this.current;
  }

  /** Opens the connection; resolves once authenticated (subscriptions already sent). */
  connect(): Promise<void> {
    if (this.current === 'live') return Promise.resolve();
    if (this.pending) return Promise.reject(new SourceError(this.source, 'BAD_REQUEST', `${this.source} stream: connect() already in progress`));
    this.stopping = false;
    this.failure = undefined;
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.open();
    });
  }

  /** Adds symbols; sent now when live, else on authentication. */
  subscribe(symbols: string[]): void {
    const added = this.checkSymbols(symbols).filter((s) => !this.symbols.has(s));
    for (const s of added) this.symbols.add(s);
    if (added.length > 0 && this.current === 'live') this.send(this.subscribeMessage(added, true));
  }

  unsubscribe(symbols: string[]): void {
    const removed = this.checkSymbols(symbols).filter((s) => this.symbols.delete(s));
    if (removed.length > 0 && this.current === 'live') this.send(this.subscribeMessage(removed, false));
  }

  subscriptions(): string[] {
    return [...this.symbols];
  }

  async close(): Promise<void> {
    this.stopping = true;
    this.clearTimers();
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.rejectPending(new SourceError(this.source, 'ABORTED', `${this.source} stream: closed`));
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1000, 'closing');
      });
    }
    if (this.current !== 'failed') this.setState('closed');
  }

  // ---- for vendors ----

  /** The JSON message that authenticates (sent after the greeting). */
  protected abstract authMessage(): object;
  /** The JSON message that (un)subscribes minute bars of these symbols. */
  protected abstract subscribeMessage(symbols: string[], subscribe: boolean): object;
  /** Reads one event of a frame. */
  protected abstract handleEvent(event: unknown): void;
  /** Headers for the handshake (none by default). */
  protected handshakeHeaders(): Record<string, string> {
    return {};
  }

  /** The vendor greeted us: authenticate. */
  protected greeted(): void {
    this.setState('authenticating');
    this.send(this.authMessage());
  }

  protected authenticated(): void {
    this.authTimer?.cancel();
    this.authTimer = undefined;
    this.attempt = 0;
    this.setState('live');
    if (this.symbols.size > 0) this.send(this.subscribeMessage([...this.symbols], true));
    this.schedulePing();
    const p = this.pending;
    this.pending = undefined;
    p?.resolve();
  }

  /** A final failure: no reconnect. The error carries `kind` (StreamFailureKind). */
  protected fatal(code: SourceErrorCode, message: string, vendorMessage?: string, kind?: StreamFailureKind): void {
    this.failure = Object.assign(new SourceError(this.source, code, `${this.source} stream: ${message}`, { vendorMessage, retryable: false }), {
      kind: kind ?? (code === 'AUTH' ? 'auth' : undefined),
    });
    this.ws?.close(1000, 'giving up');
  }

  /** The vendor said why it is about to close the connection: the reconnect log and status carry its words. */
  protected closingBecause(why: string): void {
    this.lastSocketError = why;
  }

  /** True until the vendor's greeting: the socket is open (or opening) and no auth was sent yet. */
  protected get awaitingGreeting(): boolean {
    return this.current === 'connecting' || this.current === 'reconnecting';
  }

  /**
   * Drops the connection and reconnects with the usual backoff (a stalled stream: frames stopped
   * arriving though the socket looks open). No-op unless live.
   */
  forceReconnect(why: string): void {
    const ws = this.ws;
    if (!ws || this.current !== 'live') return;
    this.lastSocketError = why;
    ws.terminate();
  }

  protected emitBar(bar: Bar): void {
    this.counters.bars++;
    this.emit('bar', bar);
  }

  protected malformed(problem: string): void {
    this.counters.malformed++;
    this.logger.warn({ source: this.source, problem }, 'malformed stream message skipped');
  }

  protected note(message: string): void {
    this.emit('status', { state: this.current, message, at: this.clock.now() } satisfies StreamStatus);
  }

  // ---- connection ----

  private open(): void {
    this.setState(this.attempt > 0 ? 'reconnecting' : 'connecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, { headers: this.handshakeHeaders(), handshakeTimeout: this.authTimeoutMs });
    } catch (err) {
      this.failure = Object.assign(new SourceError(this.source, 'BAD_REQUEST', `${this.source} stream: bad URL (${(err as Error).message})`), {
        kind: 'bad_url' as const,
      });
      this.onClose(0, '');
      return;
    }
    this.ws = ws;
    this.lastSocketError = undefined;
    this.authTimer = this.clock.setTimeout(() => {
      if (this.current !== 'live' && this.ws === ws) {
        this.lastSocketError = `not authenticated within ${this.authTimeoutMs} ms`;
        ws.terminate();
      }
    }, this.authTimeoutMs);
    ws.on('message', (data) => {
      if (this.ws === ws) this.onFrame(String(data));
    });
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    ws.on('error', (err) => {
      this.lastSocketError = (err as { code?: string }).code ?? err.message;
    });
    ws.on('close', (code, reason) => {
      if (this.ws === ws || this.ws === undefined) this.onClose(code, reason.toString());
    });
  }

  private onFrame(text: string): void {
    this.counters.messages++;
    this.counters.lastMessageAt = this.clock.now();
    let events: unknown;
    try {
      events = JSON.parse(text);
    } catch {
      this.malformed('frame is not JSON');
      return;
    }
    for (const ev of Array.isArray(events) ? events : [events]) this.handleEvent(ev);
  }

  private onClose(code: number, reason: string): void {
    this.clearTimers();
    this.ws = undefined;
    if (this.stopping) return;
    const why = this.lastSocketError ?? (reason || `close code ${code}`);
    if (this.failure) {
      this.setState('failed', this.failure.message);
      this.rejectPending(this.failure) || this.emitError(this.failure);
      return;
    }
    if (this.pending) {
      // connect() is waiting: its caller decides what to do (the collector falls back to REST).
      this.setState('failed', why);
      this.rejectPending(new SourceError(this.source, 'UNAVAILABLE', `${this.source} stream: could not connect (${why})`));
      return;
    }
    this.attempt++;
    this.counters.reconnects++;
    const delay = backoff(this.attempt - 1, { initialMs: this.backoffMs, maxMs: this.maxBackoffMs });
    this.logger.warn({ source: this.source, attempt: this.attempt, delayMs: delay, why }, 'stream dropped, reconnecting');
    this.current = 'reconnecting';
    this.emit('status', { state: 'reconnecting', message: why, attempt: this.attempt, at: this.clock.now() } satisfies StreamStatus);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopping) this.open();
    }, delay);
  }

  private schedulePing(): void {
    this.pingTimer = this.clock.setTimeout(() => {
      const ws = this.ws;
      if (!ws || this.current !== 'live') return;
      if (this.awaitingPong) {
        this.lastSocketError = 'no pong';
        ws.terminate();
        return;
      }
      this.awaitingPong = true;
      ws.ping();
      this.schedulePing();
    }, this.pingMs);
  }

  private clearTimers(): void {
    this.authTimer?.cancel();
    this.authTimer = undefined;
    this.pingTimer?.cancel();
    this.pingTimer = undefined;
    this.awaitingPong = false;
  }

  private send(msg: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private setState(state: StreamState, message?: string): void {
    this.current = state;
    this.emit('status', { state, message, at: this.clock.now() } satisfies StreamStatus);
  }

  private rejectPending(err: SourceError): boolean {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
    return p !== undefined;
  }

  private emitError(err: SourceError): void {
    // An 'error' event with no listener would crash the process; the 'status' event already told.
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private checkSymbols(symbols: string[]): string[] {
    for (const s of symbols) {
      if (!isValidSymbol(s)) throw new SourceError(this.source, 'BAD_REQUEST', `${this.source} stream: symbol ${JSON.stringify(s)} is not a valid ticker`);
    }
    return symbols;
  }
}
