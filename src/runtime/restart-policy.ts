/**
 * When a crashed actor is restarted, and when it is given up on: a pure function of the times of
 * its earlier restarts and the current time (read from the supervisor's injected clock).
 *
 * An actor that has restarted `maxRestarts` times inside `restartWindowMs` is failed. Otherwise it
 * restarts after `backoff(n)`, n being its restarts inside the window: backoffInitialMs doubling
 * per restart, capped at backoffMaxMs.
 */
import { backoff } from './backoff.ts';

export interface RestartLimits {
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxRestarts: number;
  restartWindowMs: number;
}

export type RestartDecision =
  /** Restart after `delayMs`; `history` is the restart times to keep (this one included). */
  | { action: 'restart'; delayMs: number; history: number[] }
  /** Too many restarts inside the window: `recent` of them. */
  | { action: 'give-up'; recent: number; history: number[] };

export function decideRestart(history: readonly number[], now: number, limits: RestartLimits): RestartDecision {
  const recent = history.filter((t) => now - t < limits.restartWindowMs);
  if (recent.length >= limits.maxRestarts) return { action: 'give-up', recent: recent.length, history: recent };
  const delayMs = backoff(recent.length, { initialMs: limits.backoffInitialMs, maxMs: limits.backoffMaxMs });
  return { action: 'restart', delayMs, history: [...recent, now] };
}
