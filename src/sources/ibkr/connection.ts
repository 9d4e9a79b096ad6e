/**
 * One connection to TWS or IB Gateway through @stoqey/ib's plain `IBApi`, kept up: reconnect with
 * exponential backoff, a handshake timeout, an optional heartbeat, and the connection state as
 * events. The data feed and the order client each own one, on their own client ids.
 *
 * Lifecycle: idle → connecting → connected ⇄ link-lost (1100 … 1101/1102) → disconnected →
 * connecting … → closed. `ready` fires on every completed handshake (nextValidId): that is when
 * the owner (re)issues its requests, because plain IBApi restores nothing.
 *
 * Footguns:
 * - stoqey queues every request made before nextValidId and sends it after the next handshake.
 *   Owners must only send while `isReady`, or a request made while disconnected goes out twice
 *   (once from stoqey's queue, once from the owner's resubscription).
 * - stoqey reports TWS messages with id -1 (farm status, 1100, 326) as `info`, not `error`.
 * - A reconnect must wait for the old socket's close: reconnecting from inside `disconnected`
 *   lets that late close mark the new connection disconnected. The backoff's first step does that.
 */
import { EventEmitter } from 'node:events';
import { EventName, IBApi } from '@stoqey/ib';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { classifyIbError, type IbErrorPolicy } from './error-codes.ts';
import { IbkrError } from './errors.ts';
import { backoff } from '../../runtime/backoff.ts';

export type IbkrConnectionState = 'idle' | 'connecting' | 'connected' | 'link-lost' | 'disconnected' | 'closed';

export interface IbkrEndpoint {
  host: string;
  port: number;
  clientId: number;
}

/** Everything about a connection but where it goes and its clock. */
export type IbkrConnectionTuning = Omit<IbkrConnectionOptions, keyof IbkrEndpoint | 'clock'>;

export interface IbkrConnectionOptions extends IbkrEndpoint {
  clock: Clock;
  /** Reconnect delays: initialMs × factor^n, capped at maxMs. Defaults 1000, 2, 60000. */
  backoff?: { initialMs?: number; factor?: number; maxMs?: number };
  /** The handshake (socket up to nextValidId) must finish within this. Default 10 s. */
  connectTimeoutMs?: number;
  /** Sends reqCurrentTime this often while connected; 0 turns it off. Default 30 s. */
  heartbeatMs?: number;
  /** No answer to a heartbeat within this drops and reconnects the socket. Default 10 s. */
  heartbeatTimeoutMs?: number;
  /**
   * Outgoing messages per second: the IB client library queues the rest, on the real clock (the
   * library's own default, docs/tws-protocol.md, Pitfalls). Default 40. A test on a ManualClock raises it, since
   * a queue emptied in real time would let simulated time run past its messages.
   */
  maxRequestsPerSecond?: number;
}

export interface IbRequestError {
  reqId: number;
  code: number;
  message: string;
  policy: IbErrorPolicy;
}

export interface IbNotice {
  code: number;
  message: string;
  policy: IbErrorPolicy;
}

export interface IbkrConnectionEvents {
  state: [state: IbkrConnectionState, reason: string];
  ready: [info: { nextValidId: number; reconnect: boolean }];
  /** An error that names a request or order id. */
  requestError: [error: IbRequestError];
  /** A message with id -1: connectivity, farms, client id in use, stoqey's own errors. */
  notice: [notice: IbNotice];
}

export interface IbkrConnectionStats {
  state: IbkrConnectionState;
  since: number;
  connects: number;
  disconnects: number;
  reconnectAttempt: number;
  lastNotice?: { code: number; message: string; at: number };
}

/** Reads IB_HOST, IB_PORT and IB_CLIENT_ID; refuses bad values naming the variable. */
export function ibkrEndpointFromEnv(env: Record<string, string | undefined>, defaults: Partial<IbkrEndpoint> = {}): IbkrEndpoint {
  const host = env.IB_HOST?.trim() || defaults.host || '127.0.0.1';
  const portText = env.IB_PORT?.trim();
  const port = portText ? Number(portText) : (defaults.port ?? 7497);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new IbkrError('IBKR_BAD_INPUT', `IB_PORT must be an integer 1..65535, got ${JSON.stringify(portText)}`);
  }
  const idText = env.IB_CLIENT_ID?.trim();
  const clientId = idText ? Number(idText) : (defaults.clientId ?? 1);
  if (!Number.isInteger(clientId) || clientId < 0) {
    throw new IbkrError('IBKR_BAD_INPUT', `IB_CLIENT_ID must be an integer >= 0, got ${JSON.stringify(idText)}`);
  }
  return { host, port, clientId };
}

export class IbkrConnection extends EventEmitter<IbkrConnectionEvents> {
  readonly api: IBApi;
  readonly host: string;
  readonly port: number;
  readonly clientId: number;
  private readonly clock: Clock;
  private readonly backoff: { initialMs: number; factor: number; maxMs: number };
  private readonly connectTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private current: IbkrConnectionState = 'idle';
  private since: number;
  private awaitingHandshake = false;
  private everReady = false;
  private attempt = 0;
  private connects = 0;
  private disconnects = 0;
  private lastNotice?: { code: number; message: string; at: number };
  private reconnectTimer?: TimerHandle;
  private handshakeTimer?: TimerHandle;
  private heartbeatTimer?: TimerHandle;
  private heartbeatDeadline?: TimerHandle;
  private reqSeq = 1000;

  constructor(opts: IbkrConnectionOptions) {
    super();
    if (!opts.host) throw new IbkrError('IBKR_BAD_INPUT', 'host must be a non-empty string');
    if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
      throw new IbkrError('IBKR_BAD_INPUT', `port must be an integer 1..65535, got ${opts.port}`);
    }
    if (!Number.isInteger(opts.clientId) || opts.clientId < 0) {
      throw new IbkrError('IBKR_BAD_INPUT', `clientId must be an integer >= 0, got ${opts.clientId}`);
    }
    this.host = opts.host;
    this.port = opts.port;
    this.clientId = opts.clientId;
    this.clock = opts.clock;
    this.backoff = {
      initialMs: opts.backoff?.initialMs ?? 1_000,
      factor: opts.backoff?.factor ?? 2,
      maxMs: opts.backoff?.maxMs ?? 60_000,
    };
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.heartbeatMs = opts.heartbeatMs ?? 30_000;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 10_000;
    this.since = this.clock.now();
    this.api = new IBApi({ host: this.host, port: this.port, clientId: this.clientId, maxReqPerSec: opts.maxRequestsPerSecond ?? 40 });
    this.api.on(EventName.nextValidId, (id: number) => this.onNextValidId(id));
    this.api.on(EventName.disconnected, () => this.onDisconnected());
    this.api.on(EventName.error, (err: Error, code: number, reqId: number) => this.onError(err, code, reqId));
    this.api.on(EventName.info, (message: string, code: number) => this.onInfo(message, code));
    this.api.on(EventName.currentTime, () => this.heartbeatDeadline?.cancel());
  }

  get state(): IbkrConnectionState {
    return this.current;
  }

  /** Handshake done and socket up: requests may be sent (also while TWS's link to IB is lost). */
  get isReady(): boolean {
    return this.current === 'connected' || this.current === 'link-lost';
  }

  /** A request id unique on this connection (order ids come from nextValidId instead). */
  nextRequestId(): number {
    return ++this.reqSeq;
  }

  start(): void {
    if (this.current !== 'idle') return;
    this.connect();
  }

  /** Resolves when ready; rejects with IBKR_TIMEOUT after `timeoutMs`, IBKR_CLOSED or IBKR_ABORTED. */
  whenReady(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.isReady) return Promise.resolve();
    if (this.current === 'closed') return Promise.reject(new IbkrError('IBKR_CLOSED', 'the IBKR connection is closed'));
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        timer.cancel();
        this.off('ready', onReady);
        this.off('state', onState);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => finish();
      const onState = (s: IbkrConnectionState) => {
        if (s === 'closed') finish(new IbkrError('IBKR_CLOSED', 'the IBKR connection is closed'));
      };
      const onAbort = () => finish(new IbkrError('IBKR_ABORTED', 'aborted while waiting for TWS'));
      const timer = this.clock.setTimeout(() => finish(new IbkrError('IBKR_DISCONNECTED', `not connected to TWS at ${this.host}:${this.port} after ${timeoutMs} ms`)), timeoutMs);
      this.on('ready', onReady);
      this.on('state', onState);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Drops the socket now and reconnects with backoff (used when a stream is known to be dead). */
  reconnectNow(reason: string): void {
    if (this.current === 'closed' || this.current === 'idle') return;
    this.setState('disconnected', reason);
    this.api.disconnect();
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    const wasUp = this.current !== 'idle' && this.current !== 'disconnected';
    this.clearTimers();
    this.setState('closed', 'closed by owner');
    if (wasUp) {
      const gone = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000); // the socket is destroyed at once; this only bounds the wait
        this.api.once(EventName.disconnected, () => {
          clearTimeout(t);
          resolve();
        });
      });
      this.api.disconnect();
      await gone;
    }
    this.api.removeAllListeners();
  }

  stats(): IbkrConnectionStats {
    return {
      state: this.current,
      since: this.since,
      connects: this.connects,
      disconnects: this.disconnects,
      reconnectAttempt: this.attempt,
      lastNotice: this.lastNotice,
    };
  }

  private setState(state: IbkrConnectionState, reason: string): void {
    if (this.current === state) return;
    this.current = state;
    this.since = this.clock.now();
    this.emit('state', state, reason);
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.current === 'closed') return;
    this.setState('connecting', this.attempt === 0 ? 'starting' : `reconnect attempt ${this.attempt}`);
    this.awaitingHandshake = true;
    this.handshakeTimer = this.clock.setTimeout(() => {
      if (this.awaitingHandshake && this.current === 'connecting') {
        this.notice(-1, `no handshake from TWS within ${this.connectTimeoutMs} ms`);
        this.api.disconnect();
        // stoqey emits `disconnected` only if its socket got past "disconnected"; make sure we retry.
        if (this.current === 'connecting') this.onDisconnected();
      }
    }, this.connectTimeoutMs);
    this.api.connect(this.clientId);
    this.disableNagle();
  }

  /**
   * IB messages are small and each waits for an answer: with Nagle's algorithm on, a request sent
   * right after another sits in the kernel until the first one's delayed ACK (tens of ms), which
   * delays orders. The IB client library opens the socket with Node's default (Nagle on) and keeps
   * it private, so it is reached here; a library that renames it only costs that latency.
   */
  private disableNagle(): void {
    const socket = (this.api as unknown as { controller?: { socket?: { client?: { setNoDelay?(on: boolean): unknown } } } }).controller?.socket?.client;
    socket?.setNoDelay?.(true);
  }

  private onNextValidId(id: number): void {
    if (!this.awaitingHandshake || this.current === 'closed') return;
    this.awaitingHandshake = false;
    this.handshakeTimer?.cancel();
    this.connects++;
    this.attempt = 0;
    const reconnect = this.everReady;
    this.everReady = true;
    this.setState('connected', reconnect ? 'reconnected' : 'connected');
    this.scheduleHeartbeat();
    this.emit('ready', { nextValidId: id, reconnect });
  }

  private onDisconnected(): void {
    // Already handled (a handshake timeout, then the old socket's late close): one retry is enough.
    if (this.current === 'closed' || (this.current === 'disconnected' && this.reconnectTimer)) return;
    this.awaitingHandshake = false;
    this.clearTimers();
    this.disconnects++;
    this.setState('disconnected', 'socket closed');
    const delay = backoff(this.attempt, this.backoff);
    this.attempt++;
    this.reconnectTimer = this.clock.setTimeout(() => this.connect(), delay);
  }

  private onError(err: Error, code: number, reqId: number): void {
    const message = err?.message ?? String(err);
    if (reqId !== undefined && reqId !== -1) {
      this.emit('requestError', { reqId, code, message, policy: classifyIbError(code, message) });
      return;
    }
    this.notice(code, message);
  }

  private onInfo(message: string, code: number): void {
    this.notice(code, message);
  }

  private notice(code: number, message: string): void {
    const policy = classifyIbError(code, message);
    this.lastNotice = { code, message, at: this.clock.now() };
    if (policy.kind === 'link-lost' && code === 1100 && this.current === 'connected') this.setState('link-lost', message);
    if ((code === 1101 || code === 1102) && this.current === 'link-lost') this.setState('connected', message);
    this.emit('notice', { code, message, policy });
  }

  private scheduleHeartbeat(): void {
    if (this.heartbeatMs <= 0) return;
    this.heartbeatTimer = this.clock.setTimeout(() => {
      if (!this.isReady) return;
      this.heartbeatDeadline = this.clock.setTimeout(() => {
        if (this.isReady) this.reconnectNow(`no answer to a heartbeat within ${this.heartbeatTimeoutMs} ms`);
      }, this.heartbeatTimeoutMs);
      this.api.reqCurrentTime();
      this.scheduleHeartbeat();
    }, this.heartbeatMs);
  }

  private clearTimers(): void {
    this.reconnectTimer?.cancel();
    this.handshakeTimer?.cancel();
    this.heartbeatTimer?.cancel();
    this.heartbeatDeadline?.cancel();
    this.reconnectTimer = this.handshakeTimer = this.heartbeatTimer = this.heartbeatDeadline = undefined;
  }
}
