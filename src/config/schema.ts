/**
 * The one schema every setting is checked against. config/default.yaml holds each key with its
 * default and a comment; a file named by BARKEEP_CONFIG is laid over it, then the environment.
 * Unknown keys and wrong types refuse the start with a message naming the key's path.
 */
import { z } from 'zod';
import { BAR_SIZES, type BarSize } from '../market/bar-size.ts';
import { BAR_SOURCES } from '../market/bar.ts';

const secret = z.string().min(1).nullable();
const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().positive();
const nonNegative = z.number().min(0);
const url = z.string().url();
const barSize = z.enum(BAR_SIZES);
const symbol = z.string().regex(/^[A-Z][A-Z0-9]{0,9}(?:[.\-][A-Z0-9]{1,4})?$/, 'not a ticker symbol (e.g. QQQ, BRK.B)');
const session = z.enum(['pre', 'regular', 'post', 'always']);
const percent = z.number().gt(0, 'must be a percent above 0').lt(100, 'must be a percent below 100');
/** Protective exits attached to every entry as a bracket (src/actors/trader/order-types.ts). */
export const exitsSchema = z
  .object({
    stop_loss_pct: percent.nullable().optional(),
    take_profit_pct: percent.nullable().optional(),
    trailing_stop_pct: percent.nullable().optional(),
  })
  .strict()
  .refine((e) => e.stop_loss_pct == null || e.trailing_stop_pct == null, {
    message: 'the stop-loss leg is either fixed (stop_loss_pct) or trailing (trailing_stop_pct), not both',
    path: ['trailing_stop_pct'],
  });

export const configSchema = z
  .object({
    data_dir: z.string().min(1),
    server: z
      .object({
        host: z.string().min(1),
        port,
        api_token: secret,
      })
      .strict(),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
      })
      .strict(),
    runtime: z
      .object({
        clock: z.enum(['real', 'accelerated']),
        clock_speed: z.number().positive(),
        clock_start: z.string().nullable(),
        faults: z.boolean(),
      })
      .strict(),
    supervisor: z
      .object({
        backoff_initial_ms: positiveInt,
        backoff_max_ms: positiveInt,
        max_restarts: positiveInt,
        restart_window_ms: positiveInt,
        shutdown_timeout_ms: positiveInt,
      })
      .strict(),
    storage: z
      .object({
        retention_days: z.record(barSize, positiveInt),
        prune_interval_s: positiveInt,
        source_precedence: z.array(z.enum(BAR_SOURCES)).min(1),
      })
      .strict(),
    massive: z
      .object({
        api_key: secret,
        rest_url: url,
        rate_limit_per_min: positiveInt,
        timeout_ms: positiveInt,
        websocket: z.boolean(),
        ws_url: url,
      })
      .strict(),
    alpaca: z
      .object({
        api_key_id: secret,
        api_secret_key: secret,
        data_url: url,
        feed: z.enum(['iex', 'sip', 'delayed_sip', 'boats', 'otc']),
        rate_limit_per_min: positiveInt,
        timeout_ms: positiveInt,
        websocket: z.boolean(),
        ws_url: url,
      })
      .strict(),
    sim: z
      .object({
        seed: z.number().int(),
        session: z.enum(['always', 'nyse']),
      })
      .strict(),
    collector: z
      .object({
        autostart: z.boolean(),
        symbols: z.array(symbol).min(1),
        bar_size: barSize,
        market_hours_interval_s: positiveInt,
        off_hours_interval_s: positiveInt,
        settle_s: nonNegative,
        backfill_days: positiveInt,
        failover_after_failures: positiveInt,
        retry_preferred_after_s: positiveInt,
        reconcile_interval_s: positiveInt,
        stream_stall_intervals: positiveInt,
      })
      .strict(),
    feed: z
      .object({
        cache_max_age_s: positiveInt,
        preload_bars: z.number().int().min(0),
        climb_back_after_bars: positiveInt,
        stall_intervals: positiveInt,
        realtime_grace_ms: nonNegative,
        historical_poll_s: positiveInt,
      })
      .strict(),
    ibkr: z
      .object({
        enabled: z.boolean(),
        host: z.string().min(1),
        port,
        client_id: z.number().int().min(0),
        order_client_id: z.number().int().min(0),
        reconnect_initial_ms: positiveInt,
        reconnect_max_ms: positiveInt,
      })
      .strict(),
    trader: z
      .object({
        autostart: z.boolean(),
        symbols: z.array(symbol).min(1),
        bar_size: barSize,
        strategy: z.string().min(1),
        strategy_params: z.record(z.string(), z.unknown()),
        strategy_module: z.string().min(1).nullable(),
        broker: z.enum(['paper', 'ibkr']),
        exits: exitsSchema,
        paper: z
          .object({
            starting_cash: z.number().positive(),
            slippage_bps: nonNegative,
            commission_per_share: nonNegative,
            min_commission: nonNegative,
          })
          .strict(),
      })
      .strict(),
    risk: z
      .object({
        max_position_per_symbol: z.number().positive(),
        max_order_notional: z.number().positive(),
        max_gross_exposure: z.number().positive(),
        max_daily_loss: z.number().positive(),
        max_orders_per_minute: positiveInt,
        allowed_sessions: z.array(session).min(1),
      })
      .strict(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type { BarSize };
