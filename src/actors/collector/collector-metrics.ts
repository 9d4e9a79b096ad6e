/** The collector's samples for /metrics: its own counters, its sources', and the cache's. */
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { HistoricalBarSource } from '../../sources/types.ts';

export interface CollectorCounts {
  cycles: number;
  failovers: number;
  invalidBars: number;
  receivedBySource: Record<string, number>;
  errorsByCode: Record<string, number>;
}

export function collectorMetrics(c: CollectorCounts, sources: readonly HistoricalBarSource[], cache: BarStore): MetricSample[] {
  const out: MetricSample[] = [
    { name: 'barkeep_collector_cycles_total', help: 'Collection cycles run', type: 'counter', labels: {}, value: c.cycles },
    { name: 'barkeep_collector_failovers_total', help: 'Switches between sources', type: 'counter', labels: {}, value: c.failovers },
    { name: 'barkeep_collector_invalid_bars_total', help: 'Bars a source returned that the cache would refuse, skipped', type: 'counter', labels: {}, value: c.invalidBars },
  ];
  for (const [source, n] of Object.entries(c.receivedBySource)) {
    out.push({ name: 'barkeep_collector_bars_received_total', help: 'Bars received from each source', type: 'counter', labels: { source }, value: n });
  }
  for (const [code, n] of Object.entries(c.errorsByCode)) {
    out.push({ name: 'barkeep_collector_errors_total', help: 'Collection errors by code', type: 'counter', labels: { code }, value: n });
  }
  for (const s of sources) {
    const st = s.stats();
    const labels = { source: s.name };
    out.push(
      { name: 'barkeep_source_requests_total', help: 'Requests sent to a source', type: 'counter', labels, value: st.requests },
      { name: 'barkeep_source_retries_total', help: 'Requests retried', type: 'counter', labels, value: st.retries },
      { name: 'barkeep_source_rate_limited_total', help: 'Answers of 429', type: 'counter', labels, value: st.rateLimited },
      { name: 'barkeep_source_malformed_total', help: 'Malformed bars or bodies skipped', type: 'counter', labels, value: st.malformed },
      { name: 'barkeep_source_rate_limit_remaining', help: 'Requests the limiter allows now', type: 'gauge', labels, value: st.rateLimitRemaining },
    );
  }
  const store = cache.stats();
  out.push(
    { name: 'barkeep_cache_writes_total', help: 'Bars written to the cache by the collector', type: 'counter', labels: {}, value: store.writes },
    { name: 'barkeep_cache_corrections_total', help: 'Bars replaced by a correction from the same source', type: 'counter', labels: {}, value: store.corrections },
    { name: 'barkeep_cache_shadowed_total', help: 'Bars kept out by a higher-precedence source', type: 'counter', labels: {}, value: store.shadowed },
    { name: 'barkeep_cache_source_divergences_total', help: 'Bars on which two sources disagreed on OHLC', type: 'counter', labels: {}, value: store.divergent },
    { name: 'barkeep_cache_rejected_total', help: 'Bars refused as invalid', type: 'counter', labels: {}, value: store.rejected },
    { name: 'barkeep_cache_pruned_total', help: 'Bars pruned by retention', type: 'counter', labels: {}, value: store.pruned },
  );
  return out;
}
