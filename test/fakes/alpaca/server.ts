/**
 * A wire-faithful fake of Alpaca Market Data v2 bars (docs/market-data.md, "Alpaca market data v2"), plus the
 * stock stream on the same port (see stream.ts).
 *
 * It speaks `{"bars": [...] | null, "symbol", "next_page_token"}` with opaque page tokens, RFC-3339
 * bar times, `{"message": ...}` error bodies (403 for bad credentials and for a feed the plan lacks,
 * 422 for a bad parameter, 429 over the limit) and X-RateLimit-Limit/Remaining/Reset on every
 * response. It counts every request in a rolling window so tests can assert the client never
 * exceeded the limit. Misbehaviour knobs as in the Massive fake.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bar } from '../../../src/market/bar.ts';
import { type BarSize, isBarSize } from '../../../src/market/bar-size.ts';
import { type Clock, RealClock } from '../../../src/market/clock.ts';
import { generatedBars } from '../massive/generated-bars.ts';
import { RateWindow } from '../massive/rate-window.ts';
import type { FakeRequest } from '../massive/server.ts';
import { multiBarsPage } from './multi.ts';
import { attachAlpacaStream, type FakeAlpacaStream, type FakeAlpacaStreamOptions } from './stream.ts';

export interface AlpacaCredentials {
  keyId: string;
  secret: string;
}

export interface FakeAlpacaOptions {
  /** Default [{ keyId: 'test-key-id', secret: 'test-secret' }]. */
  validKeys?: AlpacaCredentials[];
  /** Requests per window; 429 beyond it when `enforce` (default true). Default 200 per 60 s. */
  rateLimit?: { limit: number; windowMs?: number; enforce?: boolean };
  clock?: Clock;
  /** Most bars per page; default 10 000. */
  pageSize?: number;
  generate?: boolean;
  /** Feeds the plan does not include: 403 "subscription does not permit ..." . */
  forbiddenFeeds?: string[];
  /** The stream's knobs (symbol and connection limits, feeds the plan lacks). */
  stream?: FakeAlpacaStreamOptions;
}

export interface FakeAlpaca {
  url: string;
  close(): Promise<void>;
  readonly requests: number;
  readonly inFlight: number;
  readonly maxInWindow: number;
  /** Requests answered by the multi-symbol endpoint `/v2/stocks/bars`. */
  readonly multiRequests: number;
  /** `auth` is the APCA-API-KEY-ID header as sent. */
  log: FakeRequest[];
  stream: FakeAlpacaStream;
  setBars(symbol: string, bars: Bar[]): void;
  setWireBars(symbol: string, barSize: BarSize, bars: unknown[]): void;
  setPageSize(n: number): void;
  setRateLimit(limit: number, enforce?: boolean): void;
  failNext(n: number, status: number, body?: unknown): void;
  dropNext(n: number): void;
  slowNext(n: number, ms: number): void;
  malformedNext(n: number): void;
  setForbiddenFeeds(feeds: string[]): void;
}

export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

export function toAlpacaWire(b: Bar): Record<string, unknown> {
  const w: Record<string, unknown> = { t: rfc3339(b.start), o: b.open, h: b.high, l: b.low, c: b.close, v: b.volume };
  if (b.trades >= 0) w.n = b.trades;
  if (!Number.isNaN(b.vwap)) w.vw = b.vwap;
  return w;
}

const BARS_PATH = /^\/v2\/stocks\/([^/]+)\/bars$/;

function parseTime(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : raw);
  return Number.isNaN(t) ? undefined : t;
}

function wireTime(r: unknown): number | undefined {
  const t = (r as { t?: unknown } | null)?.t;
  return typeof t === 'string' ? Date.parse(t) : undefined;
}

export async function startFakeAlpaca(opts: FakeAlpacaOptions = {}): Promise<FakeAlpaca> {
  const clock = opts.clock ?? new RealClock();
  const validKeys = opts.validKeys ?? [{ keyId: 'test-key-id', secret: 'test-secret' }];
  const window = new RateWindow({ limit: opts.rateLimit?.limit ?? 200, windowMs: opts.rateLimit?.windowMs ?? 60_000, clock });
  let enforce = opts.rateLimit?.enforce ?? true;
  const wireBars = new Map<string, unknown[]>();
  let pageSize = opts.pageSize ?? 10_000;
  let forbiddenFeeds = new Set(opts.forbiddenFeeds ?? []);
  const failures: Array<{ status: number; body?: unknown }> = [];
  let drops = 0;
  let malformed = 0;
  const slows: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const log: FakeRequest[] = [];
  let requests = 0;
  let inFlight = 0;

  const rateHeaders = () => ({
    'x-ratelimit-limit': String(window.limit),
    'x-ratelimit-remaining': String(Math.max(0, window.limit - window.current())),
    'x-ratelimit-reset': String(Math.ceil(window.resetAt() / 1000)),
  });
  const send = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text), ...rateHeaders() });
    res.end(text);
  };
  const errorBody = (code: number): unknown => {
    if (code === 403) return { message: 'forbidden.' };
    if (code === 429) return { message: 'too many requests.' };
    if (code === 422) return { code: 42210000, message: 'invalid request parameter' };
    if (code === 404) return { message: 'Not Found' };
    if (code >= 500) return { message: 'internal server error occurred' };
    return { code: 40010001, message: 'bad request' };
  };

  const barsOf = (symbol: string, timeframe: BarSize, start: number, end: number): unknown[] => {
    const set = wireBars.get(`${symbol}|${timeframe}`);
    if (set) {
      return set.filter((r) => {
        const t = wireTime(r);
        return t === undefined || Number.isNaN(t) || (t >= start && t <= end);
      });
    }
    return opts.generate ? generatedBars(symbol, timeframe, start, end, 'alpaca').map(toAlpacaWire) : [];
  };
  let multiRequests = 0;

  const answer = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const keyId = req.headers['apca-api-key-id'];
    const secret = req.headers['apca-api-secret-key'];
    if (!validKeys.some((k) => k.keyId === keyId && k.secret === secret)) return send(res, 403, errorBody(403));
    if (enforce && window.current() > window.limit) return send(res, 429, errorBody(429));

    const failure = failures.shift();
    if (failure) return send(res, failure.status, failure.body ?? errorBody(failure.status));
    if (drops > 0) {
      drops--;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 4096, ...rateHeaders() });
      res.write('{"bars":[{"t":"2024-01-0');
      const t = setTimeout(() => {
        timers.delete(t);
        req.socket.destroy();
      }, 5);
      timers.add(t);
      return;
    }
    if (malformed > 0) {
      malformed--;
      const text = '<html><body>502 Bad Gateway</body></html>';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...rateHeaders() });
      return res.end(text);
    }

    const multi = url.pathname === '/v2/stocks/bars';
    const m = BARS_PATH.exec(url.pathname);
    if (!m && !multi) return send(res, 404, errorBody(404));
    const symbol = m ? decodeURIComponent(m[1]) : '';
    const q = url.searchParams;
    const timeframe = q.get('timeframe');
    if (!isBarSize(timeframe)) return send(res, 422, { code: 42210000, message: 'invalid timeframe' });
    const feed = q.get('feed') ?? 'sip';
    if (!['iex', 'sip', 'otc', 'boats'].includes(feed)) return send(res, 422, { code: 42210000, message: 'invalid feed' });
    if (forbiddenFeeds.has(feed)) {
      return send(res, 403, { message: `subscription does not permit querying recent ${feed.toUpperCase()} data` });
    }
    const limitRaw = q.get('limit');
    const limit = limitRaw === null ? 1000 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return send(res, 422, { code: 42210000, message: 'invalid limit' });
    const start = parseTime(q.get('start')) ?? 0;
    const end = parseTime(q.get('end')) ?? clock.now();
    const token = q.get('page_token');
    if (multi) {
      const symbols = (q.get('symbols') ?? '').split(',').filter(Boolean);
      if (symbols.length === 0) return send(res, 400, { code: 40010001, message: 'symbols is required' });
      const page = multiBarsPage({ symbols, start, end, limit, pageSize, token, barsOf: (sym) => barsOf(sym, timeframe, start, end) });
      multiRequests++;
      return send(res, page.status, page.body);
    }
    const after = token ? Number(Buffer.from(token, 'base64').toString()) : -Infinity;
    if (token && !Number.isFinite(after)) return send(res, 400, { code: 40010001, message: 'invalid page token' });

    const all = barsOf(symbol, timeframe, start, end);
    // The token is the time of the first bar not yet served.
    const fromIdx = token ? all.findIndex((r) => (wireTime(r) ?? -Infinity) >= after) : 0;
    const remaining = fromIdx < 0 ? [] : all.slice(fromIdx);
    const page = remaining.slice(0, Math.min(limit, pageSize));
    const nextBar = remaining.slice(page.length).find((r) => Number.isFinite(wireTime(r)));
    const next = nextBar ? Buffer.from(String(wireTime(nextBar))).toString('base64') : null;
    send(res, 200, { bars: page.length > 0 ? page : null, symbol, next_page_token: next });
  };

  const server = http.createServer((req, res) => {
    requests++;
    inFlight++;
    res.on('close', () => inFlight--);
    const url = new URL(req.url ?? '/', 'http://fake');
    const keyId = req.headers['apca-api-key-id'];
    const entry: FakeRequest = {
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      auth: typeof keyId === 'string' ? keyId : undefined,
      at: clock.now(),
    };
    log.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    window.record();
    const delay = slows.shift();
    if (delay !== undefined) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (!res.destroyed) answer(req, res, url);
      }, delay);
      timers.add(t);
      return;
    }
    answer(req, res, url);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stream = attachAlpacaStream(server, validKeys, opts.stream);

  return {
    url: `http://127.0.0.1:${port}`,
    log,
    stream,
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInWindow() {
      return window.maxInWindow;
    },
    get multiRequests() {
      return multiRequests;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await stream.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    setBars(symbol, bars) {
      const bySize = new Map<BarSize, Bar[]>();
      for (const b of bars) {
        const list = bySize.get(b.barSize) ?? [];
        list.push(b);
        bySize.set(b.barSize, list);
      }
      if (bars.length === 0) wireBars.set(`${symbol}|1Min`, []);
      for (const [size, list] of bySize) {
        list.sort((a, b) => a.start - b.start);
        wireBars.set(`${symbol}|${size}`, list.map(toAlpacaWire));
      }
    },
    setWireBars(symbol, barSize, bars) {
      wireBars.set(`${symbol}|${barSize}`, bars);
    },
    setPageSize(n) {
      pageSize = n;
    },
    setRateLimit(limit, on = true) {
      window.limit = limit;
      enforce = on;
    },
    failNext(n, code, body) {
      for (let i = 0; i < n; i++) failures.push({ status: code, body });
    },
    dropNext(n) {
      drops += n;
    },
    slowNext(n, ms) {
      for (let i = 0; i < n; i++) slows.push(ms);
    },
    malformedNext(n) {
      malformed += n;
    },
    setForbiddenFeeds(feeds) {
      forbiddenFeeds = new Set(feeds);
    },
  };
}
