/**
 * Webhook notifications (`notify.webhooks`): fills, the kill switch, an actor marked failed, a feed
 * switch, a collection failure. Each event is POSTed as JSON to every configured URL:
 *
 *   {"event": "fill", "at": "2026-01-02T15:04:05.000Z", "source": "barkeep", "data": {...}}
 *
 * Delivery never blocks the caller: `send` queues and returns. A failed delivery (network error,
 * timeout, non-2xx answer) is retried with exponential backoff (`retry_initial_ms`, doubling, up to
 * `max_attempts` attempts), then dropped and counted. The queue is bounded; past it the oldest
 * undelivered event is dropped. Bodies are built from plain fields and any secret-looking key is
 * removed, so no key or token reaches a webhook; URLs (which may embed a token) are logged by host only.
 */
export interface NotifyConfig {
  webhooks: string[];
  maxAttempts: number;
  retryInitialMs: number;
  timeoutMs: number;
}

export interface NotifyLog {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export type NotifyEvent = 'fill' | 'kill_switch' | 'actor_failed' | 'feed_switch' | 'collection_failed';

export interface Notifier {
  send(event: NotifyEvent, data: Record<string, unknown>): void;
  readonly counters: { delivered: number; retried: number; dropped: number };
  /** Waits (at most `timeoutMs`) for deliveries in flight; pending retries are abandoned. */
  close(): Promise<void>;
}

const MAX_QUEUE = 1000;
const SECRET = /(api[_-]?key|secret|token|password|authorization)/i;

function scrub(v: unknown, depth = 0): unknown {
  if (depth > 4) return undefined;
  if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!SECRET.test(k)) out[k] = scrub(x, depth + 1);
    return out;
  }
  return v;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(bad url)';
  }
}

const NOOP: Notifier = { send() {}, counters: { delivered: 0, retried: 0, dropped: 0 }, close: async () => {} };

export function createNotifier(cfg: NotifyConfig | null | undefined, log: NotifyLog): Notifier {
  if (!cfg || cfg.webhooks.length === 0) return NOOP;
  const counters = { delivered: 0, retried: 0, dropped: 0 };
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let queued = 0;
  let closed = false;

  const attempt = async (url: string, body: string): Promise<boolean> => {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'barkeep' },
        body,
        signal: AbortSignal.timeout(cfg.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok;
    } catch {
      return false;
    }
  };

  const deliver = (url: string, body: string, event: string, n: number) => {
    const p = attempt(url, body).then((ok) => {
      if (ok) {
        counters.delivered++;
        queued--;
        return;
      }
      if (n + 1 >= cfg.maxAttempts || closed) {
        counters.dropped++;
        queued--;
        log.warn({ event, webhook: hostOf(url), attempts: n + 1 }, 'webhook delivery failed; event dropped');
        return;
      }
      counters.retried++;
      const t = setTimeout(
        () => {
          timers.delete(t);
          deliver(url, body, event, n + 1);
        },
        cfg.retryInitialMs * 2 ** n,
      );
      t.unref();
      timers.add(t);
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  return {
    counters,
    send(event, data) {
      if (closed) return;
      const body = JSON.stringify({ event, at: new Date().toISOString(), source: 'barkeep', data: scrub(data) });
      for (const url of cfg.webhooks) {
        if (queued >= MAX_QUEUE) {
          counters.dropped++;
          continue;
        }
        queued++;
        deliver(url, body, event, 0);
      }
    },
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const bound = new Promise<void>((r) => setTimeout(r, cfg.timeoutMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), bound]);
    },
  };
}
