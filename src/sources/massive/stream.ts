import { BarStream, type BarStreamOptions } from './bar-stream.ts';
import { MASSIVE_DEFAULT_REST_URL } from './source.ts';
import { isNum, pricesConsistent, wireBar } from '../wire-bar.ts';

export const MASSIVE_DEFAULT_WS_URL = 'wss://socket.massive.com/stocks';

export interface MassiveStreamOptions extends Omit<BarStreamOptions, 'url'> {
  apiKey: string;
  /** Default wss://socket.massive.com/stocks (wss://delayed.massive.com/stocks for delayed plans). */
  url?: string;
}

/**
 * The stream URL to use: `wsUrl` when it was set to something other than the vendor's default,
 * else the one that goes with `restUrl` (so a REST URL pointed at another host streams from it too).
 */
export function massiveWsUrl(restUrl: string, wsUrl: string | null | undefined): string {
  return wsUrl && wsUrl !== MASSIVE_DEFAULT_WS_URL ? wsUrl : massiveStreamUrl(restUrl);
}

/** The stream URL that goes with a REST URL: the vendor's for the vendor's host, else the same host's /stocks. */
export function massiveStreamUrl(restUrl: string = MASSIVE_DEFAULT_REST_URL): string {
  const u = new URL(restUrl);
  if (u.hostname === 'api.massive.com' || u.hostname === 'api.polygon.io') return MASSIVE_DEFAULT_WS_URL;
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/stocks`;
}

export class MassiveStream extends BarStream {
  readonly source = 'massive' as const;
  private readonly apiKey: string;

  constructor(opts: MassiveStreamOptions) {
    super({ ...opts, url: opts.url ?? MASSIVE_DEFAULT_WS_URL });
    this.apiKey = opts.apiKey;
  }

  protected authMessage(): object {
    return { action: 'auth', params: this.apiKey };
  }

  protected subscribeMessage(symbols: string[], subscribe: boolean): object {
    return { action: subscribe ? 'subscribe' : 'unsubscribe', params: symbols.map((s) => `AM.${s}`).join(',') };
  }

  protected handleEvent(event: unknown): void {
    const ev = event as Record<string, unknown> | null;
    if (ev === null || typeof ev !== 'object') return this.malformed('event is not an object');
    if (ev.ev === 'AM') return this.onAggregate(ev);
    if (ev.ev !== 'status') return;
    const status = ev.status;
    const message = typeof ev.message === 'string' ? ev.message : '';
    // Every status has a deliberate answer (docs/market-data.md, Massive WebSocket):
    if (status === 'connected') this.greeted();
    else if (status === 'success' && this.awaitingGreeting) {
      // The documented greeting is {"status":"success","message":"Connected Successfully"}; live
      // servers send {"status":"connected"}. Either one means: authenticate now.
      this.greeted();
    } else if (status === 'auth_success') this.authenticated();
    else if (status === 'auth_failed') this.fatal('AUTH', `authentication failed: ${message}`, message, 'auth');
    else if (status === 'auth_timeout') {
      // The server closes next; reconnecting (and authenticating at once) is the answer.
      this.closingBecause(`auth_timeout: ${message}`);
    } else if (status === 'max_connections') {
      // Another process uses this key and the vendor evicted us, the older connection. Reconnecting
      // would evict it in turn: give up, and let the collector poll REST.
      this.fatal('UNAVAILABLE', `max_connections: another connection uses this key (${message})`, message, 'evicted');
    } else if (status === 'success') this.logger.debug({ source: 'massive', message }, 'stream ack');
    else {
      this.logger.warn({ source: 'massive', status, message }, 'stream status');
      this.note(`${String(status)}: ${message}`);
    }
  }

  private onAggregate(ev: Record<string, unknown>): void {
    const { sym, o, h, l, c, v, vw, s, e } = ev;
    if (typeof sym !== 'string' || !isNum(s) || !isNum(o) || !isNum(h) || !isNum(l) || !isNum(c) || !isNum(v)) {
      return this.malformed('AM event lacks sym/s/o/h/l/c/v');
    }
    if (s % 60_000 !== 0 || (isNum(e) && e - s !== 60_000)) return this.malformed(`AM event window ${s}..${String(e)} is not one minute`);
    if (!pricesConsistent(o, h, l, c, v)) return this.malformed('AM event prices are not consistent');
    // AM events carry no trade count.
    this.emitBar(wireBar({ o, h, l, c, v, vw }, sym, '1Min', s, 'massive', this.clock.now()));
  }
}
