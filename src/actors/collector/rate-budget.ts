/**
 * The REST rate budget of a collection cycle: how many requests per minute the symbols need at the
 * configured cadence, against the vendor's `rate_limit_per_min`. When they need more, the cadence
 * stretches to whole minutes that fit (the collector says so at start, in the log and in status),
 * rather than falling behind silently with every cycle running into the next.
 */
import type { Logger } from '../../runtime/log.ts';
import type { HistoricalBarSource, SourceName } from '../../sources/types.ts';
import { symbolsPerRequest } from './multi-symbol.ts';

export interface RateBudgetInput {
  symbols: number;
  /** Symbols one request serves (1 for Massive; Alpaca's multi-symbol endpoint serves many). */
  symbolsPerRequest: number;
  /** The source's `rate_limit_per_min`. */
  rateLimitPerMin: number;
  /** The cadence the schedule asks for (the market-hours interval, or the reconciliation one). */
  intervalMs: number;
}

/** `rate_budget` in /data-collector/status. */
export interface RateBudget {
  /** Requests per minute the symbols need at the asked cadence. */
  needed: number;
  /** Requests per minute the vendor allows. */
  available: number;
  requests_per_cycle: number;
  /** The cadence the collector runs at: the asked one, or stretched to fit. */
  interval_ms: number;
  stretched: boolean;
}

const MIN = 60_000;

export function rateBudget(i: RateBudgetInput): RateBudget {
  const perRequest = Math.max(1, Math.floor(i.symbolsPerRequest));
  const requests = Math.ceil(Math.max(0, i.symbols) / perRequest);
  const needed = Math.round(((requests * MIN) / i.intervalMs) * 100) / 100;
  const available = i.rateLimitPerMin;
  if (!(needed > available) || !Number.isFinite(available)) {
    return { needed, available, requests_per_cycle: requests, interval_ms: i.intervalMs, stretched: false };
  }
  // Whole minutes, so cycles stay on bar closes: the fewest minutes whose budget covers one cycle.
  const interval = Math.max(i.intervalMs, Math.ceil(requests / available) * MIN);
  return { needed, available, requests_per_cycle: requests, interval_ms: interval, stretched: interval > i.intervalMs };
}

/** The budget of `symbols` on `source` at `intervalMs` (null: the simulated market, or no limit). */
export function sourceRateBudget(source: HistoricalBarSource, symbols: number, intervalMs: number): RateBudget | null {
  const limit = source.stats().rateLimitPerMin;
  if (source.name === 'sim' || !Number.isFinite(limit)) return null;
  return rateBudget({ symbols, symbolsPerRequest: symbolsPerRequest(source), rateLimitPerMin: limit, intervalMs });
}

/** Said at start: in the log, a warning when the cadence stretches. */
export function logRateBudget(log: Logger, source: SourceName, symbols: number, b: RateBudget | null): void {
  if (!b) return;
  const fields = { source, symbols, needed_per_min: b.needed, available_per_min: b.available, interval_ms: b.interval_ms };
  if (!b.stretched) return log.info(fields, 'rate budget');
  log.warn(fields, `rate budget: ${symbols} symbols need ${b.needed} requests/min, the plan allows ${b.available}; REST cycles run every ${b.interval_ms / 60_000} min`);
}
