/**
 * Massive's WebSocket stream (docs/market-data.md, "Massive" › WebSocket) on the fake's HTTP server, path /stocks:
 * connected → auth → auth_success/auth_failed → subscribe `AM.<T>` → per-topic success, and
 * `AM` minute aggregates pushed by the test. Every frame is a JSON array: one event alone
 * (`pushMinuteBar`) or a minute's events for many symbols packed several to a frame (`pushMinuteBars`).
 *
 * Knobs for the vendor's other answers: the documented greeting `{"status":"success","message":
 * "Connected Successfully"}` instead of the live servers' `connected`; `auth_timeout` (the fake
 * ignores the next auth and times out); `max_connections` (a per-key limit, the oldest connection
 * evicted first as the vendor does); any status event pushed by the test.
 */
import type http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Bar } from '../../../src/market/bar.ts';
import { type PackOptions, type Packed, sendPacked } from '../pack-frames.ts';

export interface FakeMassiveStreamOptions {
  /** The greeting sent on connect: `connected` (live servers, default) or `success` (the docs). */
  greeting?: 'connected' | 'success';
  /** Authenticated connections allowed per key; a newer one evicts the oldest. Default unlimited. */
  maxConnectionsPerKey?: number;
}

export interface FakeMassiveStream {
  /** The greeting for the next connections. */
  setGreeting(greeting: 'connected' | 'success'): void;
  setMaxConnectionsPerKey(n: number): void;
  /** The next n auth messages get no answer; `auth_timeout` and a close follow after `ms` (real time). */
  timeoutNextAuth(n: number, ms?: number): void;
  /** While on, new connections are cut at once (an outage the client keeps retrying into). */
  refuseConnections(on: boolean): void;
  /** While set, every auth is answered auth_failed with this message (e.g. a plan without WebSockets). */
  refuseAuth(message: string | null): void;
  /** Sends `[{"ev":"status","status":...,"message":...}]` to every open connection. */
  sendStatus(status: string, message: string): void;
  /** Sends a raw text frame to every authenticated connection (malformed-message tests). */
  sendRaw(text: string): void;
  /** Sends an `AM` event, alone in its frame, to every authenticated client subscribed to `AM.<symbol>` or `AM.*`; returns how many got it. */
  pushMinuteBar(symbol: string, bar: Bar): number;
  /**
   * Sends a minute's `AM` events for many symbols (each bar's own `symbol`) packed as the vendor
   * does: several events to a frame, by default up to 100 events or 16 KiB (`perFrame`, `maxBytes`);
   * each client gets the events it subscribed to. `onFrame` hears of each frame just before it goes out.
   */
  pushMinuteBars(bars: readonly Bar[], opts?: PackOptions): Packed;
  /** Kills every connection without a close frame (an outage). */
  dropAll(): void;
  /** Open connections / authenticated ones / auth attempts seen. */
  readonly connections: number;
  readonly authenticated: number;
  readonly authAttempts: number;
  /** Topics each authenticated client has, e.g. ['AM.QQQ']. */
  subscriptions(): string[][];
  close(): Promise<void>;
}

interface ClientState {
  authed: boolean;
  key?: string;
  topics: Set<string>;
}

export function attachMassiveStream(server: http.Server, validKeys: Set<string>, opts: FakeMassiveStreamOptions = {}): FakeMassiveStream {
  const wss = new WebSocketServer({ server, path: '/stocks' });
  const clients = new Map<WebSocket, ClientState>();
  let authAttempts = 0;
  let greeting = opts.greeting ?? 'connected';
  let maxPerKey = opts.maxConnectionsPerKey ?? Infinity;
  const authTimeouts: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let refusing = false;
  let authRefusal: string | null = null;
  const status = (ws: WebSocket, st: string, message: string) => ws.send(JSON.stringify([{ ev: 'status', status: st, message }]));

  wss.on('connection', (ws) => {
    if (refusing) {
      ws.terminate();
      return;
    }
    const state: ClientState = { authed: false, topics: new Set() };
    clients.set(ws, state);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => clients.delete(ws));
    status(ws, greeting, 'Connected Successfully');
    ws.on('message', (data) => {
      let msg: { action?: unknown; params?: unknown };
      try {
        msg = JSON.parse(String(data));
      } catch {
        return status(ws, 'error', 'invalid json');
      }
      const params = typeof msg.params === 'string' ? msg.params : '';
      if (msg.action === 'auth') {
        authAttempts++;
        const timeout = authTimeouts.shift();
        if (timeout !== undefined) {
          const t = setTimeout(() => {
            timers.delete(t);
            if (ws.readyState !== WebSocket.OPEN) return;
            status(ws, 'auth_timeout', 'No authentication request received.');
            ws.close(1008, 'auth timeout');
          }, timeout);
          timers.add(t);
          return;
        }
        if (validKeys.has(params) && authRefusal === null) {
          state.authed = true;
          state.key = params;
          status(ws, 'auth_success', 'authenticated');
          // One connection per key (per cluster) by default at the vendor: the oldest goes first.
          const same = [...clients].filter(([, st]) => st.authed && st.key === params);
          for (const [old] of same.slice(0, Math.max(0, same.length - maxPerKey))) {
            status(
              old,
              'max_connections',
              'Maximum number of websocket connections exceeded. You have reached the connection limit for your account. Please contact support at https://massive.com/contact to increase your limit.',
            );
            old.close(1008, 'max_connections');
            clients.get(old)!.authed = false;
          }
          return;
        }
        status(ws, 'auth_failed', authRefusal ?? 'authentication failed');
        ws.close(1008, 'authentication failed');
        return;
      }
      if (!state.authed) return status(ws, 'error', 'not authorized');
      const topics = params
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (msg.action === 'subscribe') {
        for (const t of topics) {
          state.topics.add(t);
          status(ws, 'success', `subscribed to: ${t}`);
        }
      } else if (msg.action === 'unsubscribe') {
        for (const t of topics) {
          state.topics.delete(t);
          status(ws, 'success', `unsubscribed to: ${t}`);
        }
      } else {
        status(ws, 'error', 'unknown action');
      }
    });
  });

  return {
    setGreeting(g) {
      greeting = g;
    },
    refuseConnections(on) {
      refusing = on;
    },
    refuseAuth(message) {
      authRefusal = message;
    },
    setMaxConnectionsPerKey(n) {
      maxPerKey = n;
    },
    timeoutNextAuth(n, ms = 20) {
      for (let i = 0; i < n; i++) authTimeouts.push(ms);
    },
    sendStatus(st, message) {
      for (const ws of clients.keys()) if (ws.readyState === WebSocket.OPEN) status(ws, st, message);
    },
    sendRaw(text) {
      for (const [ws, st] of clients) if (st.authed && ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    pushMinuteBar(symbol, bar) {
      const frame = JSON.stringify([amEvent(symbol, bar)]);
      let sent = 0;
      for (const [ws, st] of clients) {
        if (wantsAM(st, symbol) && ws.readyState === WebSocket.OPEN) {
          ws.send(frame);
          sent++;
        }
      }
      return sent;
    },
    pushMinuteBars(bars, packOpts) {
      const topics = bars.map((b) => `AM.${b.symbol}`);
      return sendPacked(
        bars.map((b) => amEvent(b.symbol, b)),
        [...clients],
        (st, i) => st.authed && (st.topics.has(topics[i]) || st.topics.has('AM.*')),
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
    subscriptions() {
      return [...clients.values()].filter((s) => s.authed).map((s) => [...s.topics]);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const ws of clients.keys()) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function wantsAM(st: ClientState, symbol: string): boolean {
  return st.authed && (st.topics.has(`AM.${symbol}`) || st.topics.has('AM.*'));
}

/** The vendor's `AM` event for a bar; `vw` only when the bar has one (a test can send an aggregate without it). */
function amEvent(symbol: string, bar: Bar): object {
  return {
    ev: 'AM',
    sym: symbol,
    v: bar.volume,
    av: bar.volume * 10,
    op: bar.open,
    ...(Number.isNaN(bar.vwap) ? {} : { vw: bar.vwap }),
    o: bar.open,
    c: bar.close,
    h: bar.high,
    l: bar.low,
    a: bar.close,
    z: 100,
    s: bar.start,
    e: bar.start + 60_000,
  };
}
