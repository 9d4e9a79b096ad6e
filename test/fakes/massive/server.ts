/**
 * A wire-faithful fake of Massive's REST aggregates endpoint (docs/market-data.md, "Massive"), plus
 * its WebSocket stream on the same port (see stream.ts).
 *
 * It speaks the real envelope (`status`, `request_id`, `results` absent when empty, `next_url` with
 * a `cursor` and the `from` segment rewritten to ms), the real error bodies (401 ERROR, 403
 * NOT_AUTHORIZED, 429 ERROR), and counts every request in a rolling window so a test can assert
 * the client never exceeded the limit. Knobs make it misbehave: failNext, dropNext, slowNext,
 * malformedNext, forbidden, DELAYED status, a foreign next_url origin.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bar } from '../../../src/market/bar.ts';
import type { BarSize } from '../../../src/market/bar-size.ts';
import { type Clock, RealClock } from '../../../src/market/clock.ts';
import { generatedBars } from './generated-bars.ts';
import { RateWindow } from './rate-window.ts';
import { attachMassiveStream, type FakeMassiveStream, type FakeMassiveStreamOptions } from './stream.ts';

export interface FakeMassiveOptions {
  /** Keys the fake accepts; default ['test-key']. */
  validKeys?: string[];
  /** Requests per window before 429; default no enforcement (still counted). */
  rateLimit?: { limit: number; windowMs?: number };
  /** Clock for the rate window and the log; default real time. */
  clock?: Clock;
  /** Most bars per page (forces pagination); default 50 000 (the vendor's max `limit`). */
  pageSize?: number;
  /** Serve generated bars for symbols with none set; default false (no data). */
  generate?: boolean;
  status?: 'OK' | 'DELAYED';
  /** The WebSocket stream's knobs (greeting, connection limit). */
  stream?: FakeMassiveStreamOptions;
}

export interface FakeRequest {
  path: string;
  query: Record<string, string>;
  /** The Authorization header as sent (or `apiKey=` when the key came in the query). */
  auth: string | undefined;
  at: number;
  /** The HTTP status answered (undefined while pending or when the connection was dropped). */
  status?: number;
}

export interface FakeMassive {
  url: string;
  close(): Promise<void>;
  /** Requests received (all paths, all outcomes). */
  readonly requests: number;
  /** Requests received but not answered yet. */
  readonly inFlight: number;
  /** The most requests seen in one rate window. */
  readonly maxInWindow: number;
  log: FakeRequest[];
  stream: FakeMassiveStream;
  setBars(symbol: string, bars: Bar[]): void;
  /** Raw wire objects for `results`, good or bad, served as they are. */
  setWireBars(symbol: string, barSize: BarSize, results: unknown[]): void;
  setStatus(status: 'OK' | 'DELAYED'): void;
  setPageSize(n: number): void;
  setRateLimit(limit: number): void;
  /** Next n requests answer `status` with the vendor's body for it (or `body` when given). */
  failNext(n: number, status: number, body?: unknown): void;
  /** Next n requests get headers and half a body, then the socket is destroyed. */
  dropNext(n: number): void;
  /** Next n requests wait `ms` (real time) before any answer. */
  slowNext(n: number, ms: number): void;
  /** Next n requests get a 200 whose body is not JSON. */
  malformedNext(n: number): void;
  /** Next n requests get a 500 (or `status`) whose error text echoes the Authorization header it was sent, past `pad` characters. */
  echoKeyNext(n: number, pad?: number, status?: number): void;
  /** Next n requests get a 200 that drips one byte every `everyMs` (real time) and never finishes. */
  dripNext(n: number, everyMs: number): void;
  /** Next n requests get this status with a raw body (an HTML 502 from a proxy, garbage). */
  rawNext(n: number, status: number, contentType: string, text: string): void;
  /** Next n requests have their connection reset before any answer. */
  resetNext(n: number): void;
  /** Next n aggregates pages carry a next_url pointing at themselves (a loop). */
  loopNext(n: number): void;
  /** Next n aggregates requests get an empty page whose next_url leads to the real one. */
  emptyPageNext(n: number): void;
  /** Answer 403 NOT_AUTHORIZED for every aggregates request (plan does not cover it). */
  setForbidden(on: boolean): void;
  /** Make next_url point at another origin (a leak test). */
  setNextUrlOrigin(origin: string | undefined): void;
}

const TIMESPANS: Record<string, BarSize | undefined> = {
  '1/minute': '1Min',
  '5/minute': '5Min',
  '15/minute': '15Min',
  '30/minute': '30Min',
  '1/hour': '1Hour',
  '60/minute': '1Hour',
  '1/day': '1Day',
};

const AGGS_PATH = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/(\d+)\/([a-z]+)\/([^/]+)\/([^/]+)$/;

function requestId(): string {
  return randomBytes(16).toString('hex');
}

export function toMassiveWire(b: Bar): Record<string, number> {
  const w: Record<string, number> = { v: b.volume, o: b.open, c: b.close, h: b.high, l: b.low, t: b.start };
  if (!Number.isNaN(b.vwap)) w.vw = b.vwap;
  if (b.trades >= 0) w.n = b.trades;
  return w;
}

function parseTime(raw: string): number | undefined {
  if (/^\d+$/.test(raw)) return Number(raw);
  if (/^\d{4}-\d{2}-\d{2}$/.test(raw)) {
    const t = Date.parse(`${raw}T00:00:00Z`);
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}

export async function startFakeMassive(opts: FakeMassiveOptions = {}): Promise<FakeMassive> {
  const clock = opts.clock ?? new RealClock();
  const validKeys = new Set(opts.validKeys ?? ['test-key']);
  const window = new RateWindow({ limit: opts.rateLimit?.limit ?? Infinity, windowMs: opts.rateLimit?.windowMs ?? 60_000, clock });
  const wireBars = new Map<string, unknown[]>(); // key: symbol|barSize
  let status: 'OK' | 'DELAYED' = opts.status ?? 'OK';
  let pageSize = opts.pageSize ?? 50_000;
  let forbidden = false;
  let nextUrlOrigin: string | undefined;
  const failures: Array<{ status: number; body?: unknown }> = [];
  let drops = 0;
  let malformed = 0;
  const echoes: Array<{ pad: number; status: number }> = [];
  const drips: number[] = [];
  const raws: Array<{ status: number; contentType: string; text: string }> = [];
  let resets = 0;
  let loops = 0;
  let empties = 0;
  const slows: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const log: FakeRequest[] = [];
  let requests = 0;
  let inFlight = 0;
  let origin = '';

  const send = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const errorBody = (code: number): unknown => {
    if (code === 401) return { status: 'ERROR', request_id: requestId(), error: 'Unknown API Key' };
    if (code === 403) {
      return {
        status: 'NOT_AUTHORIZED',
        request_id: requestId(),
        message: 'You are not entitled to this data. Please upgrade your plan at https://polygon.io/pricing',
      };
    }
    if (code === 429) {
      return {
        status: 'ERROR',
        request_id: requestId(),
        error: "You've exceeded the maximum requests per minute, please wait or upgrade your subscription to continue.",
      };
    }
    if (code === 404) return { status: 'NOT_FOUND', request_id: requestId(), message: 'Not found' };
    if (code >= 500) return { status: 'ERROR', request_id: requestId(), error: 'Internal server error' };
    return { status: 'ERROR', request_id: requestId(), error: 'Bad request' };
  };

  const answer = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, auth: string | undefined) => {
    // Auth first, like the vendor: the key is checked before anything else.
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7);
    else key = url.searchParams.get('apiKey') ?? undefined;
    if (!key) return send(res, 401, { status: 'ERROR', request_id: requestId(), error: 'API Key was not provided' });
    if (!validKeys.has(key)) return send(res, 401, errorBody(401));
    if (window.current() > window.limit) return send(res, 429, errorBody(429));

    const echo = echoes.shift();
    if (echo !== undefined) {
      return send(res, echo.status, { status: 'ERROR', request_id: requestId(), error: `${'x'.repeat(echo.pad)} Authorization=${auth}` });
    }
    const raw = raws.shift();
    if (raw) {
      res.writeHead(raw.status, { 'content-type': raw.contentType, 'content-length': Buffer.byteLength(raw.text) });
      return res.end(raw.text);
    }
    if (resets > 0) {
      resets--;
      req.socket.resetAndDestroy();
      return;
    }
    const drip = drips.shift();
    if (drip !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1_000_000 });
      const text = '{"ticker":"X","status":"OK","results":[' + '{"v":1},'.repeat(100_000);
      let i = 0;
      const t = setInterval(() => {
        if (res.destroyed || i >= text.length) {
          clearInterval(t);
          timers.delete(t as unknown as NodeJS.Timeout);
          return;
        }
        res.write(text[i++]);
      }, drip);
      timers.add(t as unknown as NodeJS.Timeout);
      return;
    }
    const failure = failures.shift();
    if (failure) return send(res, failure.status, failure.body ?? errorBody(failure.status));
    if (drops > 0) {
      drops--;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 4096 });
      res.write('{"ticker":"X","status":"OK","results":[{"v":1');
      // Let the partial body reach the client before the connection dies mid-response.
      const t = setTimeout(() => {
        timers.delete(t);
        req.socket.destroy();
      }, 5);
      timers.add(t);
      return;
    }
    if (malformed > 0) {
      malformed--;
      const text = '{"ticker":"X","status":"OK","results":[{"v":1,"o":';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      return res.end(text);
    }

    const m = AGGS_PATH.exec(url.pathname);
    if (!m) return send(res, 404, errorBody(404));
    if (forbidden) return send(res, 403, errorBody(403));
    const symbol = decodeURIComponent(m[1]);
    const barSize = TIMESPANS[`${m[2]}/${m[3]}`];
    const from = parseTime(m[4]);
    const to = parseTime(m[5]);
    if (from === undefined || to === undefined) {
      return send(res, 400, { status: 'ERROR', request_id: requestId(), error: "Could not parse the 'from' or 'to' parameter." });
    }
    // A cursor carries the original options; its absence means they are in the query.
    const cursor = url.searchParams.get('cursor');
    const options = cursor ? new URLSearchParams(Buffer.from(cursor, 'base64url').toString()) : url.searchParams;
    const limit = Math.min(50_000, Number(options.get('limit') ?? 5000) || 5000);
    const adjusted = options.get('adjusted') !== 'false';

    if (empties > 0 && !url.searchParams.has('after_empty')) {
      empties--;
      const again = new URL(url.pathname + url.search, origin);
      again.searchParams.set('after_empty', '1');
      return send(res, 200, { ticker: symbol, queryCount: 0, resultsCount: 0, adjusted, status, request_id: requestId(), next_url: again.href });
    }
    let all: unknown[];
    const set = barSize ? wireBars.get(`${symbol}|${barSize}`) : undefined;
    if (set) all = set.filter((r) => !isTimed(r) || (r.t >= from && r.t <= to));
    else if (opts.generate && barSize) all = generatedBars(symbol, barSize, from, to, 'massive').map(toMassiveWire);
    else all = [];

    const page = all.slice(0, Math.min(limit, pageSize));
    const rest = all.slice(page.length);
    const body: Record<string, unknown> = {
      ticker: symbol,
      queryCount: page.length,
      resultsCount: page.length,
      adjusted,
      status,
      request_id: requestId(),
    };
    if (page.length > 0) {
      body.results = page;
      body.count = page.length;
    }
    if (loops > 0) {
      loops--;
      body.next_url = new URL(url.pathname + url.search, origin).href;
      return send(res, 200, body);
    }
    const next = rest.find(isTimed);
    if (rest.length > 0 && next) {
      const nextCursor = Buffer.from(`adjusted=${adjusted}&limit=${limit}&sort=asc`).toString('base64url');
      body.next_url = `${nextUrlOrigin ?? origin}/v2/aggs/ticker/${m[1]}/range/${m[2]}/${m[3]}/${next.t}/${m[5]}?cursor=${nextCursor}`;
    }
    send(res, 200, body);
  };

  const server = http.createServer((req, res) => {
    requests++;
    inFlight++;
    res.on('close', () => inFlight--);
    const url = new URL(req.url ?? '/', 'http://fake');
    const auth = req.headers.authorization ?? (url.searchParams.has('apiKey') ? 'apiKey=' : undefined);
    const entry: FakeRequest = { path: url.pathname, query: Object.fromEntries(url.searchParams), auth, at: clock.now() };
    log.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });
    window.record();
    const delay = slows.shift();
    if (delay !== undefined) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (!res.destroyed) answer(req, res, url, req.headers.authorization);
      }, delay);
      timers.add(t);
      return;
    }
    answer(req, res, url, req.headers.authorization);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
  const stream = attachMassiveStream(server, validKeys, opts.stream);

  return {
    url: origin,
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
    async close() {
      for (const t of timers) {
        clearTimeout(t);
        clearInterval(t);
      }
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
        wireBars.set(`${symbol}|${size}`, list.map(toMassiveWire));
      }
    },
    setWireBars(symbol, barSize, results) {
      wireBars.set(`${symbol}|${barSize}`, results);
    },
    setStatus(s) {
      status = s;
    },
    setPageSize(n) {
      pageSize = n;
    },
    setRateLimit(limit) {
      window.limit = limit;
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
    echoKeyNext(n, pad = 400, status = 500) {
      for (let i = 0; i < n; i++) echoes.push({ pad, status });
    },
    dripNext(n, everyMs) {
      for (let i = 0; i < n; i++) drips.push(everyMs);
    },
    rawNext(n, status, contentType, text) {
      for (let i = 0; i < n; i++) raws.push({ status, contentType, text });
    },
    resetNext(n) {
      resets += n;
    },
    loopNext(n) {
      loops += n;
    },
    emptyPageNext(n) {
      empties += n;
    },
    setForbidden(on) {
      forbidden = on;
    },
    setNextUrlOrigin(o) {
      nextUrlOrigin = o;
    },
  };
}

function isTimed(r: unknown): r is { t: number } {
  return typeof r === 'object' && r !== null && typeof (r as { t?: unknown }).t === 'number';
}
