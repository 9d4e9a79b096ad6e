/**
 * Alpaca's stock stream (docs/market-data.md, "Alpaca market data v2" › WebSocket) on the fake's HTTP server, path /v2/{feed}:
 * connected → auth (message or handshake headers) → authenticated / error 402 → subscribe → full
 * subscription echo, and `b` (or `u`) bars pushed by the test. Frames are JSON arrays: one bar
 * alone (`pushMinuteBar`) or a minute's bars for many symbols batched in frames (`pushMinuteBars`).
 *
 * Knobs for the vendor's other answers: 404 auth timeout, 405 symbol limit exceeded (subscriptions
 * unchanged), 406 connection limit exceeded (the new connection is refused), 409 insufficient
 * subscription (a feed the plan lacks), and any error pushed by the test.
 */
import type http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Bar } from '../../../src/market/bar.ts';
import { type PackOptions, type Packed, sendPacked } from '../pack-frames.ts';
import type { AlpacaCredentials } from './server.ts';

export interface FakeAlpacaStreamOptions {
  /** Symbols a connection may subscribe (the free plan: 30); default unlimited. */
  symbolLimit?: number;
  /** Authenticated connections per key; default unlimited (the vendor: usually 1). */
  connectionLimit?: number;
  /** Stream feeds the plan lacks: 409 insufficient subscription after auth. */
  forbiddenFeeds?: string[];
}

export interface FakeAlpacaStream {
  setSymbolLimit(n: number): void;
  setConnectionLimit(n: number): void;
  setForbiddenFeeds(feeds: string[]): void;
  /** The next n auth messages get no answer; error 404 and a close follow after `ms` (real time). */
  timeoutNextAuth(n: number, ms?: number): void;
  /** Sends `[{"T":"error","code":...,"msg":...}]` to every open connection. */
  sendError(code: number, msg: string): void;
  /** Sends a `b` (or `u`) bar, alone in its frame, to authenticated clients subscribed to the symbol's bars; returns how many got it. */
  pushMinuteBar(symbol: string, bar: Bar, type?: 'b' | 'u'): number;
  /**
   * Sends a minute's bars for many symbols (each bar's own `symbol`) batched as the vendor does:
   * several messages to a frame, by default up to 100 or 16 KiB (`perFrame`, `maxBytes`); each client
   * gets the bars it subscribed to. `onFrame` hears of each frame just before it goes out.
   */
  pushMinuteBars(bars: readonly Bar[], opts?: PackOptions & { type?: 'b' | 'u' }): Packed;
  dropAll(): void;
  readonly connections: number;
  readonly authenticated: number;
  readonly authAttempts: number;
  /** The feed path of each open connection (iex, sip, ...). */
  feeds(): string[];
  close(): Promise<void>;
}

interface ClientState {
  feed: string;
  authed: boolean;
  key?: string;
  bars: Set<string>;
  updatedBars: Set<string>;
}

const FEED_PATH = /^\/v2\/(iex|sip|delayed_sip|test)$/;

export function attachAlpacaStream(server: http.Server, validKeys: AlpacaCredentials[], opts: FakeAlpacaStreamOptions = {}): FakeAlpacaStream {
  const wss = new WebSocketServer({ noServer: true });
  const clients = new Map<WebSocket, ClientState>();
  let authAttempts = 0;
  let symbolLimit = opts.symbolLimit ?? Infinity;
  let connectionLimit = opts.connectionLimit ?? Infinity;
  let forbiddenFeeds = new Set(opts.forbiddenFeeds ?? []);
  const authTimeouts: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** After valid credentials: the plan's answers (409, 406) or authenticated. */
  const admit = (ws: WebSocket, st: ClientState, key: string): void => {
    if (forbiddenFeeds.has(st.feed)) {
      frame(ws, { T: 'error', code: 409, msg: 'insufficient subscription' });
      ws.close(1008, 'insufficient subscription');
      return;
    }
    const open = [...clients.values()].filter((c) => c.authed && c.key === key).length;
    if (open >= connectionLimit) {
      frame(ws, { T: 'error', code: 406, msg: 'connection limit exceeded' });
      ws.close(1008, 'connection limit exceeded');
      return;
    }
    st.authed = true;
    st.key = key;
    frame(ws, { T: 'success', msg: 'authenticated' });
  };
  const valid = (key: unknown, secret: unknown) => validKeys.some((k) => k.keyId === key && k.secret === secret);
  const frame = (ws: WebSocket, msg: object) => ws.send(JSON.stringify([msg]));
  const subscription = (st: ClientState) => ({
    T: 'subscription',
    trades: [],
    quotes: [],
    bars: [...st.bars],
    updatedBars: [...st.updatedBars],
    dailyBars: [],
    statuses: [],
    lulds: [],
    corrections: [],
    cancelErrors: [],
  });

  server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const m = FEED_PATH.exec(path);
    if (!m) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const st: ClientState = { feed: m[1], authed: false, bars: new Set(), updatedBars: new Set() };
      clients.set(ws, st);
      ws.on('close', () => clients.delete(ws));
      ws.on('error', () => clients.delete(ws));
      frame(ws, { T: 'success', msg: 'connected' });
      if (req.headers['apca-api-key-id'] !== undefined) {
        authAttempts++;
        if (valid(req.headers['apca-api-key-id'], req.headers['apca-api-secret-key'])) {
          admit(ws, st, String(req.headers['apca-api-key-id']));
        } else {
          frame(ws, { T: 'error', code: 402, msg: 'auth failed' });
          ws.close(1008, 'auth failed');
          return;
        }
      }
      ws.on('message', (data) => {
        let msg: { action?: unknown; key?: unknown; secret?: unknown; bars?: unknown; updatedBars?: unknown };
        try {
          msg = JSON.parse(String(data));
        } catch {
          return frame(ws, { T: 'error', code: 400, msg: 'invalid syntax' });
        }
        if (msg.action === 'auth') {
          if (st.authed) return frame(ws, { T: 'error', code: 403, msg: 'already authenticated' });
          authAttempts++;
          const timeout = authTimeouts.shift();
          if (timeout !== undefined) {
            const t = setTimeout(() => {
              timers.delete(t);
              if (ws.readyState !== WebSocket.OPEN) return;
              frame(ws, { T: 'error', code: 404, msg: 'auth timeout' });
              ws.close(1008, 'auth timeout');
            }, timeout);
            timers.add(t);
            return;
          }
          if (valid(msg.key, msg.secret)) return admit(ws, st, String(msg.key));
          frame(ws, { T: 'error', code: 402, msg: 'auth failed' });
          ws.close(1008, 'auth failed');
          return;
        }
        if (!st.authed) return frame(ws, { T: 'error', code: 401, msg: 'not authenticated' });
        const list = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
        if (msg.action === 'subscribe') {
          const union = new Set([...st.bars, ...st.updatedBars, ...list(msg.bars), ...list(msg.updatedBars)]);
          if (union.size > symbolLimit) return frame(ws, { T: 'error', code: 405, msg: 'symbol limit exceeded' });
          for (const s of list(msg.bars)) st.bars.add(s);
          for (const s of list(msg.updatedBars)) st.updatedBars.add(s);
        } else if (msg.action === 'unsubscribe') {
          for (const s of list(msg.bars)) st.bars.delete(s);
          for (const s of list(msg.updatedBars)) st.updatedBars.delete(s);
        } else {
          return frame(ws, { T: 'error', code: 400, msg: 'invalid syntax' });
        }
        frame(ws, subscription(st));
      });
    });
  });

  return {
    setSymbolLimit(n) {
      symbolLimit = n;
    },
    setConnectionLimit(n) {
      connectionLimit = n;
    },
    setForbiddenFeeds(feeds) {
      forbiddenFeeds = new Set(feeds);
    },
    timeoutNextAuth(n, ms = 20) {
      for (let i = 0; i < n; i++) authTimeouts.push(ms);
    },
    sendError(code, msg) {
      for (const ws of clients.keys()) if (ws.readyState === WebSocket.OPEN) frame(ws, { T: 'error', code, msg });
    },
    pushMinuteBar(symbol, bar, type = 'b') {
      const text = JSON.stringify([barMessage(symbol, bar, type)]);
      let sent = 0;
      for (const [ws, st] of clients) {
        if (wantsBar(st, symbol, type) && ws.readyState === WebSocket.OPEN) {
          ws.send(text);
          sent++;
        }
      }
      return sent;
    },
    pushMinuteBars(bars, packOpts = {}) {
      const type = packOpts.type ?? 'b';
      return sendPacked(
        bars.map((b) => barMessage(b.symbol, b, type)),
        [...clients],
        (st, i) => wantsBar(st, bars[i].symbol, type),
        packOpts,
      );
    },
    dropAll() {
      for (const ws of clients.keys()) ws.terminate();
    },
    get connections() {
      return clients.size;
    },
    get authenticated() {
      let n = 0;
      for (const st of clients.values()) if (st.authed) n++;
      return n;
    },
    get authAttempts() {
      return authAttempts;
    },
    feeds() {
      return [...clients.values()].map((s) => s.feed);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const ws of clients.keys()) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function wantsBar(st: ClientState, symbol: string, type: 'b' | 'u'): boolean {
  const topics = type === 'b' ? st.bars : st.updatedBars;
  return st.authed && (topics.has(symbol) || topics.has('*'));
}

/** The vendor's bar message; `n` and `vw` only when the bar has them (a test can send a bar without). */
function barMessage(symbol: string, bar: Bar, type: 'b' | 'u'): object {
  return {
    T: type,
    S: symbol,
    o: bar.open,
    h: bar.high,
    l: bar.low,
    c: bar.close,
    v: bar.volume,
    t: new Date(bar.start).toISOString().replace('.000Z', 'Z'),
    ...(bar.trades < 0 ? {} : { n: bar.trades }),
    ...(Number.isNaN(bar.vwap) ? {} : { vw: bar.vwap }),
  };
}
