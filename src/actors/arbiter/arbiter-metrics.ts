/** The arbiter's status (GET /feed) and its samples for /metrics. */
import type { MetricSample } from '../../runtime/protocol.ts';
import type { SymbolFeed } from './feed-state.ts';
import { LADDER } from './ladder.ts';
import type { ArbiterStatus, FeedState } from './protocol.ts';

export interface ArbiterCounts {
  barSize: ArbiterStatus['bar_size'];
  switches: number;
  switchCounts: ReadonlyMap<string, number>;
  deliveredByRung: Readonly<Record<string, number>>;
  holesFilled: number;
  stalls: number;
  ibkrEnabled: boolean;
  ibkrConnection: string;
  ibkrErrors: Readonly<Record<string, number>>;
}

export function arbiterStatus(feeds: readonly SymbolFeed[], c: ArbiterCounts): ArbiterStatus {
  const feed: Record<string, FeedState> = {};
  for (const f of feeds) {
    feed[f.symbol] = {
      rung: f.ladder.serving,
      since: new Date(f.ladder.since).toISOString(),
      reason: f.ladder.reason,
      last_bar_time: Number.isFinite(f.lastDelivered) ? new Date(f.lastDelivered).toISOString() : null,
      unavailable: f.ladder.unavailable(),
    };
  }
  return {
    symbols: feeds.map((f) => f.symbol),
    bar_size: c.barSize,
    feed,
    switches: c.switches,
    ibkr: { enabled: c.ibkrEnabled, connection: c.ibkrConnection, errors: { ...c.ibkrErrors } },
  };
}

export function arbiterMetrics(feeds: readonly SymbolFeed[], c: ArbiterCounts): MetricSample[] {
  const out: MetricSample[] = [
    { name: 'barkeep_feed_stalls_total', help: 'Real-time subscriptions found silent', type: 'counter', labels: {}, value: c.stalls },
    { name: 'barkeep_feed_holes_filled_total', help: 'Bars handed on from the cache to fill a switch', type: 'counter', labels: {}, value: c.holesFilled },
  ];
  for (const [key, n] of c.switchCounts) {
    const [symbol, from, to] = key.split('|');
    out.push({ name: 'barkeep_feed_switches_total', help: 'Feed ladder switches', type: 'counter', labels: { symbol, from, to }, value: n });
  }
  for (const [rung, n] of Object.entries(c.deliveredByRung)) {
    out.push({ name: 'barkeep_feed_bars_delivered_total', help: 'Bars handed to the trading loop, by rung', type: 'counter', labels: { rung }, value: n });
  }
  for (const [code, n] of Object.entries(c.ibkrErrors)) {
    out.push({ name: 'barkeep_ibkr_errors_total', help: 'IBKR errors by code', type: 'counter', labels: { code }, value: n });
  }
  for (const f of feeds) {
    out.push({
      name: 'barkeep_feed_rung',
      help: 'Rung serving each symbol (0 ibkr-realtime .. 3 ibkr-historical, -1 none)',
      type: 'gauge',
      labels: { symbol: f.symbol },
      value: f.ladder.serving === null ? -1 : LADDER.indexOf(f.ladder.serving),
    });
  }
  return out;
}
