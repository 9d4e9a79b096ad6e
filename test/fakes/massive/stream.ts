/**
 * Massive's WebSocket stream (market-data-apis.md §1.7) on the fake's HTTP server, path /stocks:
 * connected → auth → auth_success/auth_failed → subscribe `AM.<T>` → per-topic success, and
 * `AM` minute aggregates pushed by the test. Every frame is a JSON array.
 */
import type http from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import type { Bar } from '../../../src/market/bar.ts';

export interface FakeMassiveStream {
  /** Sends an `AM` event to every authenticated client subscribed to `AM.<symbol>` or `AM.*`. */
  pushMinuteBar(symbol: string, bar: Bar): number;
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
  topics: Set<string>;
}

export function attachMassiveStream(server: http.Server, validKeys: Set<string>): FakeMassiveStream {
  const wss = new WebSocketServer({ server, path: '/stocks' });
  const clients = new Map<WebSocket, ClientState>();
  let authAttempts = 0;
  const status = (ws: WebSocket, st: string, message: string) => ws.send(JSON.stringify([{ ev: 'status', status: st, message }]));

  wss.on('connection', (ws) => {
    const state: ClientState = { authed: false, topics: new Set() };
    clients.set(ws, state);
    ws.on('close', () => clients.delete(ws));
    ws.on('error', () => clients.delete(ws));
    status(ws, 'connected', 'Connected Successfully');
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
        if (validKeys.has(params)) {
          state.authed = true;
          return status(ws, 'auth_success', 'authenticated');
        }
        status(ws, 'auth_failed', 'authentication failed');
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
    pushMinuteBar(symbol, bar) {
      const event = {
        ev: 'AM',
        sym: symbol,
        v: bar.volume,
        av: bar.volume * 10,
        op: bar.open,
        vw: Number.isNaN(bar.vwap) ? bar.close : bar.vwap,
        o: bar.open,
        c: bar.close,
        h: bar.high,
        l: bar.low,
        a: bar.close,
        z: 100,
        s: bar.start,
        e: bar.start + 60_000,
      };
      const frame = JSON.stringify([event]);
      let sent = 0;
      for (const [ws, st] of clients) {
        if (st.authed && (st.topics.has(`AM.${symbol}`) || st.topics.has('AM.*')) && ws.readyState === WebSocket.OPEN) {
          ws.send(frame);
          sent++;
        }
      }
      return sent;
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
      for (const ws of clients.keys()) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
