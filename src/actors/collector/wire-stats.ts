/** A source's figures as the collector's status sends them: snake_case, like every JSON field. */
import type { SourceStats } from '../../sources/types.ts';

export interface WireSourceStats {
  requests: number;
  errors: number;
  retries: number;
  rate_limited: number;
  malformed: number;
  rate_limit_remaining: number;
  rate_limit_per_min: number;
  last_error?: { code: NonNullable<SourceStats['lastError']>['code']; message: string; status?: number; at: number };
}

export function wireSourceStats(s: SourceStats): WireSourceStats {
  return {
    requests: s.requests,
    errors: s.errors,
    retries: s.retries,
    rate_limited: s.rateLimited,
    malformed: s.malformed,
    rate_limit_remaining: s.rateLimitRemaining,
    rate_limit_per_min: s.rateLimitPerMin,
    ...(s.lastError ? { last_error: { ...s.lastError } } : {}),
  };
}
