/** Main-thread notifications: an actor marked failed by the supervisor. */
import type { Config } from '../config/schema.ts';
import type { Supervisor } from '../runtime/supervisor.ts';
import type { Notifier, NotifyConfig } from './webhook.ts';

export function notifyConfig(config: Config): NotifyConfig | null {
  const n = config.notify;
  if (!n || n.webhooks.length === 0) return null;
  return { webhooks: n.webhooks, maxAttempts: n.max_attempts, retryInitialMs: n.retry_initial_ms, timeoutMs: n.timeout_ms };
}

/** Polls the supervisor's actor list (cheap, in memory) and tells the notifier when an actor becomes failed. */
export function watchActors(sup: Supervisor, notifier: Notifier, everyMs = 500): { close(): Promise<void> } {
  const failed = new Set<string>();
  const timer = setInterval(() => {
    for (const a of sup.list()) {
      if (a.state === 'failed' && !failed.has(a.name)) {
        failed.add(a.name);
        notifier.send('actor_failed', { actor: a.name, restarts: a.restarts, last_error: a.last_error ?? null });
      } else if (a.state !== 'failed') failed.delete(a.name);
    }
  }, everyMs);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await notifier.close();
    },
  };
}
