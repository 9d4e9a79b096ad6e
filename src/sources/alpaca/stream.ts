import { BarStream, type BarStreamOptions, type StreamFailureKind } from '../massive/bar-stream.ts';
import { isNum, pricesConsistent, wireBar } from '../wire-bar.ts';

export const ALPACA_STREAM_FEEDS = ['iex', 'sip', 'delayed_sip', 'test'] as const;
export type AlpacaStreamFeed = (typeof ALPACA_STREAM_FEEDS)[number];

export interface AlpacaStreamOptions extends Omit<BarStreamOptions, 'url'> {
  keyId: string;
  secretKey: string;
  /** Default `iex`. */
  feed?: AlpacaStreamFeed;
  /** Full URL including the feed; default derived with alpacaStreamUrl(). */
  url?: string;
}

/** The vendor's stream base (config `alpaca.ws_url` default). */
export const ALPACA_DEFAULT_WS_URL = 'wss://stream.data.alpaca.markets/v2';

/**
 * The stream URL to use for a feed: from `wsUrl` when it was set to something other than the
 * vendor's default, else the one that goes with `dataUrl`.
 */
export function alpacaWsUrl(dataUrl: string, wsUrl: string | null | undefined, feed: AlpacaStreamFeed): string {
  return alpacaStreamUrl(wsUrl && wsUrl !== ALPACA_DEFAULT_WS_URL ? wsUrl : dataUrl, feed);
}

/**
 * The stream URL for a feed. `base` is either a data REST URL (data.alpaca.markets → the vendor's
 * stream host; any other host → the same host) or a stream base ending in /v2.
 */
export function alpacaStreamUrl(base: string, feed: AlpacaStreamFeed): string {
  const u = new URL(base);
  if (u.protocol === 'ws:' || u.protocol === 'wss:') return `${base.replace(/\/+$/, '')}/${feed}`;
  if (u.hostname === 'data.alpaca.markets') return `${ALPACA_DEFAULT_WS_URL}/${feed}`;
  if (u.hostname === 'data.sandbox.alpaca.markets') return `wss://stream.data.sandbox.alpaca.markets/v2/${feed}`;
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/v2/${feed}`;
}

/**
 * Stream errors that end the stream (docs/market-data.md, Alpaca stream errors). 402: the key was
 * refused (fail over as REST does); 406: another client holds the one connection (fighting it would
 * evict it); 409: the plan lacks this feed; 405: more symbols than the plan streams (the server keeps
 * the old subscriptions, so the new symbols would silently get no bars). The collector polls REST.
 */
const FATAL: Record<number, { code: 'AUTH' | 'FORBIDDEN' | 'UNAVAILABLE'; kind: StreamFailureKind }> = {
  402: { code: 'AUTH', kind: 'auth' },
  405: { code: 'FORBIDDEN', kind: 'symbol_limit' },
  406: { code: 'UNAVAILABLE', kind: 'evicted' },
  409: { code: 'FORBIDDEN', kind: 'plan' },
};

export class AlpacaStream extends BarStream {
  readonly source = 'alpaca' as const;
  readonly feed: AlpacaStreamFeed;
  private readonly keyId: string;
  private readonly secretKey: string;

  constructor(opts: AlpacaStreamOptions) {
    const feed = opts.feed ?? 'iex';
    super({ ...opts, url: opts.url ?? alpacaStreamUrl('https://data.alpaca.markets', feed) });
    this.feed = feed;
    this.keyId = opts.keyId;
    this.secretKey = opts.secretKey;
  }

  protected authMessage(): object {
    return { action: 'auth', key: this.keyId, secret: this.secretKey };
  }

  protected subscribeMessage(symbols: string[], subscribe: boolean): object {
    return { action: subscribe ? 'subscribe' : 'unsubscribe', bars: symbols, updatedBars: symbols };
  }

  protected handleEvent(event: unknown): void {
    const ev = event as Record<string, unknown> | null;
    if (ev === null || typeof ev !== 'object') return this.malformed('event is not an object');
    const type = ev.T;
    if (type === 'b' || type === 'u') return this.onBar(ev);
    const msg = typeof ev.msg === 'string' ? ev.msg : '';
    if (type === 'success') {
      if (msg === 'connected') this.greeted();
      else if (msg === 'authenticated') this.authenticated();
      return;
    }
    if (type === 'error') {
      const code = typeof ev.code === 'number' ? ev.code : 0;
      const fatal = FATAL[code];
      if (fatal) this.fatal(fatal.code, `error ${code}: ${msg}`, msg, fatal.kind);
      else if (code === 404) {
        // auth timeout: the server closes next; the reconnect authenticates at once.
        this.closingBecause(`error 404: ${msg}`);
      } else {
        // 400/401/403/410 answer one message of ours; 407 (slow client) may precede a disconnect,
        // which reconnects; 500 is the server's. Logged and shown, the connection kept.
        this.logger.warn({ source: 'alpaca', code, msg }, 'stream error');
        this.note(`error ${code}: ${msg}`);
      }
      return;
    }
    if (type === 'subscription') this.logger.debug({ source: 'alpaca', bars: ev.bars }, 'stream subscription');
  }

  private onBar(ev: Record<string, unknown>): void {
    const { S, t, o, h, l, c, v, n, vw } = ev;
    const start = typeof t === 'string' ? Date.parse(t) : NaN;
    if (typeof S !== 'string' || !Number.isFinite(start) || !isNum(o) || !isNum(h) || !isNum(l) || !isNum(c) || !isNum(v)) {
      return this.malformed('bar message lacks S/t/o/h/l/c/v');
    }
    if (start % 60_000 !== 0) return this.malformed(`bar time ${String(t)} is not on a minute`);
    if (!pricesConsistent(o, h, l, c, v)) return this.malformed('bar prices are not consistent');
    this.emitBar(wireBar({ o, h, l, c, v, vw, n }, S, '1Min', start, 'alpaca', this.clock.now()));
  }
}
