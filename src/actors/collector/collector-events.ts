/**
 * The collector's `collector` events: `written` when bars of a symbol went into the cache (how
 * many, the first and last start), `cycle` after each collection cycle (the source, the last
 * collection per symbol, failover, and the newest errors).
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { CollectorStatus } from './protocol.ts';

export function writtenEvent(barSize: BarSize, symbol: string, starts: number[]): Record<string, unknown> {
  let first = Infinity;
  let last = -Infinity;
  for (const s of starts) {
    if (s < first) first = s;
    if (s > last) last = s;
  }
  // A streamed minute is one bar: first and last are the same string.
  const firstIso = starts.length ? new Date(first).toISOString() : null;
  return {
    kind: 'written',
    symbol,
    bar_size: barSize,
    count: starts.length,
    first: firstIso,
    last: starts.length === 0 ? null : last === first ? firstIso : new Date(last).toISOString(),
  };
}

export function cycleEvent(s: CollectorStatus): Record<string, unknown> {
  return {
    kind: 'cycle',
    is_running: s.is_running,
    api_type: s.api_type,
    source: s.source,
    failover_reason: s.failover_reason,
    last_collection_times: s.last_collection_times,
    next_cycle_at: s.next_cycle_at,
    cycles: s.cycles,
    bars_written: s.bars_written,
    errors: s.errors.slice(0, 5),
  };
}
