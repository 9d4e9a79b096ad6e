/**
 * Each actor's slice of the configuration: plain data, cloned into the actor's thread. The server
 * (engine.ts) and the CLI (backfill) both build actors from it.
 */
import { notifyConfig } from '../notify/watch.ts';
import type { ArbiterConfig } from '../actors/arbiter/protocol.ts';
import type { CollectorConfig } from '../actors/collector/protocol.ts';
import type { TraderConfig } from '../actors/trader/protocol.ts';
import type { Config } from './schema.ts';

function ibkrConn(config: Config, clientId: number) {
  const i = config.ibkr;
  return i.enabled ? { host: i.host, port: i.port, clientId, reconnectInitialMs: i.reconnect_initial_ms, reconnectMaxMs: i.reconnect_max_ms } : null;
}

/** Each actor's slice of the configuration (plain data: it is cloned into the actor's thread). */

/** The trading session the config describes (`trader.*`): autostarted, and what a partial `POST /live/start` completes from. */
export function liveStartOf(t: Config['trader']) {
  return { symbols: t.symbols, bar_size: t.bar_size, strategy: t.strategy, strategy_params: t.strategy_params, broker: t.broker, strategy_module: t.strategy_module };
}

/** The Alpaca REST source's options from `alpaca.*` (the collector and `barkeep check` build it alike). */
export function alpacaRestOptions(a: Config['alpaca']) {
  return { keyId: a.api_key_id ?? '', secretKey: a.api_secret_key ?? '', dataUrl: a.data_url, feed: a.feed, rateLimitPerMin: a.rate_limit_per_min, timeoutMs: a.timeout_ms };
}

export function actorConfigs(config: Config): { collector: CollectorConfig; arbiter: ArbiterConfig; trader: TraderConfig } {
  const dataDir = config.data_dir;
  const precedence = config.storage.source_precedence;
  const m = config.massive;
  const a = config.alpaca;
  const noVendor = !m.api_key && !a.api_key_id;
  return {
    collector: {
      dataDir,
      storage: {
        retentionDays: config.storage.retention_days,
        sourcePrecedence: precedence,
        pruneIntervalS: config.storage.prune_interval_s,
      },
      autostart: config.collector.autostart ? { symbols: config.collector.symbols, barSize: config.collector.bar_size } : null,
      schedule: {
        marketHoursIntervalMs: config.collector.market_hours_interval_s * 1000,
        offHoursIntervalMs: config.collector.off_hours_interval_s * 1000,
        settleMs: config.collector.settle_s * 1000,
      },
      backfillDays: config.collector.backfill_days,
      failoverAfterFailures: config.collector.failover_after_failures,
      retryPreferredAfterMs: config.collector.retry_preferred_after_s * 1000,
      reconcileIntervalMs: config.collector.reconcile_interval_s * 1000,
      // Streams carry 1Min bars: the stall limit counts minutes.
      streamStallMs: config.collector.stream_stall_intervals * 60_000,
      massive: m.api_key ? { apiKey: m.api_key, restUrl: m.rest_url, rateLimitPerMin: m.rate_limit_per_min, timeoutMs: m.timeout_ms, websocket: m.websocket, wsUrl: m.ws_url } : null,
      alpaca: a.api_key_id && a.api_secret_key ? { ...alpacaRestOptions(a), websocket: a.websocket, wsUrl: a.ws_url } : null,
      sim: { seed: config.sim.seed, session: config.sim.session },
      cluster: config.cluster.enabled ? { natsUrl: config.cluster.nats_url, nodeId: config.cluster.node_id ?? '' } : null,
      notify: notifyConfig(config),
    },
    arbiter: {
      dataDir,
      storage: { sourcePrecedence: precedence },
      cacheMaxAgeMs: config.feed.cache_max_age_s * 1000,
      preloadBars: config.feed.preload_bars,
      climbBackAfterBars: config.feed.climb_back_after_bars,
      stallIntervals: config.feed.stall_intervals,
      realtimeGraceMs: config.feed.realtime_grace_ms,
      historicalPollMs: config.feed.historical_poll_s * 1000,
      ibkr: ibkrConn(config, config.ibkr.client_id),
    },
    trader: {
      dataDir,
      storage: { sourcePrecedence: precedence },
      autostart: config.trader.autostart ? liveStartOf(config.trader) : null,
      strategyModule: config.trader.strategy_module,
      exits: config.trader.exits,
      paper: {
        startingCash: config.trader.paper.starting_cash,
        slippageBps: config.trader.paper.slippage_bps,
        commissionPerShare: config.trader.paper.commission_per_share,
        minCommission: config.trader.paper.min_commission,
      },
      risk: {
        maxPositionPerSymbol: config.risk.max_position_per_symbol,
        maxOrderNotional: config.risk.max_order_notional,
        maxGrossExposure: config.risk.max_gross_exposure,
        maxDailyLoss: config.risk.max_daily_loss,
        maxOrdersPerMinute: config.risk.max_orders_per_minute,
        allowedSessions: config.risk.allowed_sessions,
      },
      alwaysOpen: noVendor && config.sim.session === 'always',
      ibkr: ibkrConn(config, config.ibkr.order_client_id),
      notify: notifyConfig(config),
      // The node id is settled by the engine once the port is bound (its default names the port).
      cluster: config.cluster.enabled ? { natsUrl: config.cluster.nats_url, nodeId: config.cluster.node_id ?? '', leaseTtlMs: config.cluster.lease_ttl_s * 1000 } : null,
    },
  };
}
