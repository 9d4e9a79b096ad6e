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

/** The supervisor's settings (config `supervisor.*`). */
export interface SupervisorPolicy extends RestartLimits {
  shutdownTimeoutMs: number;
  /** Keep a loaded spare worker per actor so a restart need not wait for a cold load. */
  warmSpares: boolean;
  /** A control call that gets no answer in this long fails. */
  callTimeoutMs: number;
}

export const DEFAULT_POLICY: SupervisorPolicy = {
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  shutdownTimeoutMs: 10_000,
  warmSpares: true,
  callTimeoutMs: 10_000,
};

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
