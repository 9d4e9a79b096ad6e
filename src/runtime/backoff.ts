/**
 * The one exponential backoff: the delay before retry number `retry` (0 for the first retry) is
 * `initialMs * factor^retry`, capped at `maxMs`. Used by HTTP retries, stream and TWS reconnects,
 * and the supervisor's actor restarts.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Growth per retry. Default 2. */
  factor?: number;
}

export function backoff(retry: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.initialMs * (policy.factor ?? 2) ** retry);
}
