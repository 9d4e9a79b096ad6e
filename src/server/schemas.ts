/**
 * The HTTP API's shapes as zod schemas: the request schemas the routes validate with, and the
 * response and error schemas. /openapi.json is generated from these same objects (openapi.ts), and
 * the compile-time checks at the bottom hold each response schema to the TypeScript type the actor
 * returns, both ways, so the document cannot drift from what the server sends.
 */
import { z } from 'zod';
import { BAR_SOURCES, isValidSymbol } from '../market/bar.ts';
import { BAR_SIZES } from '../market/bar-size.ts';
import { exitsSchema } from '../config/schema.ts';
import type { CollectorStatus } from '../actors/collector/protocol.ts';
import type { OrderView, PositionView, TraderStatus } from '../actors/trader/protocol.ts';
import type { ActorInfo } from '../runtime/supervisor.ts';
import type { WireBar } from '../storage/bar-query.ts';

// ---- requests -------------------------------------------------------------------------------

export const symbolSchema = z
  .string()
  // Read in upper case, as the config and the CLI read symbols (qqq is QQQ).
  .transform((s) => s.toUpperCase())
  .refine(isValidSymbol, 'not a ticker symbol (e.g. QQQ, BRK.B)')
  .meta({ description: 'A ticker symbol: capital letters and digits, an optional .class suffix (QQQ, BRK.B)', example: 'QQQ' });
export const symbolsSchema = z.array(symbolSchema).min(1, 'needs at least one symbol').max(500, 'at most 500 symbols');
export const barSizeSchema = z.enum(BAR_SIZES);

export const collectorStartBody = z
  .object({ symbols: symbolsSchema.optional(), bar_size: barSizeSchema.optional() })
  .strict()
  .meta({ description: 'Both optional: the configured symbols and bar size.' });

export const liveStartBody = z
  .object({
    symbols: symbolsSchema.optional(),
    bar_size: barSizeSchema.optional(),
    strategy: z.string().min(1).optional().meta({ description: 'sma-crossover, mean-reversion, or module (trader.strategy_module)' }),
    strategy_params: z.record(z.string(), z.unknown()).optional(),
    broker: z.enum(['paper', 'ibkr']).optional(),
    strategy_module: z.string().min(1).nullable().optional().meta({ description: 'Path of your own strategy module (.ts or .js, anywhere); when set it is the strategy' }),
    exits: exitsSchema.nullable().optional().meta({ description: 'Protective exits for this session (absent: the configured ones; null: none)' }),
  })
  .strict()
  .meta({ description: 'All optional: what is left out is kept from the running session, else the configured trader settings.' });

export const killBody = z.object({ flatten: z.boolean().optional().meta({ description: 'Also close every position at market' }) }).strict();

export const actorNameParams = z.object({ name: z.string().meta({ description: 'collector, arbiter or trader' }) });
export const symbolParams = z.object({ symbol: z.string().meta({ description: 'A ticker symbol', example: 'QQQ' }) });

export const eventsQuery = z
  .object({
    types: z.string().optional().meta({ description: 'Comma-separated event types to receive (default: all): bar, order, fill, feed_switch, actor, collector' }),
    last_event_id: z.string().optional().meta({ description: 'Resume after this event id (as the Last-Event-ID header does)' }),
    access_token: z.string().optional().meta({ description: 'The API token, for browsers whose EventSource cannot send headers' }),
  })
  .strict();

// ---- responses ------------------------------------------------------------------------------

export const errorSchema = z
  .object({
    error: z.string().meta({ description: 'bad_request, unauthorized, not_found, conflict, actor_unavailable, internal, ...' }),
    message: z.string(),
    field: z.string().nullable().meta({ description: 'The request field at fault (symbols.1, bar_size, body, path, authorization); always set on a 4xx, null on a 5xx' }),
  })
  .meta({ id: 'Error' });

export const iso = z.string().meta({ description: 'ISO-8601 UTC time' });
export const isoOrNull = iso.nullable();

export const healthSchema = z.object({ status: z.enum(['ok', 'degraded']), reasons: z.array(z.string()) }).meta({ id: 'Health' });

export const actorInfoSchema = z
  .object({
    name: z.string(),
    state: z.enum(['starting', 'running', 'restarting', 'failed', 'stopping', 'stopped']),
    thread_id: z.number().int().nullable(),
    restarts: z.number().int(),
    last_error: z.string().nullable(),
    uptime_s: z.number().nullable(),
  })
  .meta({ id: 'Actor' });
export const actorsSchema = z.object({ actors: z.array(actorInfoSchema) });

export const crashSchema = z.object({ crashing: z.string() });
export const restartSchema = z.object({ restarting: z.string() });

const sourceName = z.enum(['massive', 'alpaca', 'sim']);
const sourceStatsSchema = z.object({
  requests: z.number(),
  errors: z.number(),
  retries: z.number(),
  rate_limited: z.number(),
  malformed: z.number(),
  rate_limit_remaining: z.number(),
  rate_limit_per_min: z.number(),
  last_error: z
    .object({
      code: z.enum(['AUTH', 'FORBIDDEN', 'BAD_REQUEST', 'RATE_LIMITED', 'UNAVAILABLE', 'TIMEOUT', 'MALFORMED', 'ABORTED']),
      message: z.string(),
      status: z.number().optional(),
      at: z.number(),
    })
    .optional(),
});

const streamMode = z.enum(['stream', 'rest']);
const streamHealthSchema = z
  .object({
    state: z.enum(['off', 'idle', 'connecting', 'authenticating', 'live', 'reconnecting', 'closed', 'failed']),
    since: isoOrNull,
    messages: z.number().int(),
    last_message_at: isoOrNull,
    reconnects: z.number().int(),
    stalls: z.number().int(),
    subscribed: z.array(z.string()),
    mode: streamMode,
    reason: z.string().nullable().meta({ description: "Why the mode is rest, in the vendor's words when it sent some" }),
  })
  .meta({ id: 'StreamHealth' });

export const collectorStatusSchema = z
  .object({
    is_running: z.boolean(),
    symbols: z.array(z.string()),
    bar_size: barSizeSchema,
    api_type: z.enum(['Massive API', 'Alpaca API', 'Simulated']),
    source: sourceName,
    preferred_source: sourceName,
    failover_reason: z.string().nullable(),
    last_collection_times: z.record(z.string(), iso),
    is_trading_hours: z.boolean(),
    next_cycle_at: isoOrNull,
    cycles: z.number().int(),
    cycles_overrun: z.number().int().meta({ description: 'Cycles aborted at their total deadline (a source that stalled or drip-fed)' }),
    cycle_started_at: isoOrNull.meta({ description: 'When the cycle under way started; null between cycles' }),
    bars_written: z.number().int(),
    errors: z.array(
      z.object({
        at: iso,
        source: sourceName,
        symbol: z.string().optional(),
        code: z.string(),
        status: z.number().optional(),
        message: z.string(),
      }),
    ),
    sources: z.object({ massive: sourceStatsSchema.optional(), alpaca: sourceStatsSchema.optional(), sim: sourceStatsSchema.optional() }),
    mode: streamMode.meta({ description: "`stream` while the active source's stream brings the bars (REST reconciles), else `rest`" }),
    streams: z
      .object({ massive: streamHealthSchema.optional(), alpaca: streamHealthSchema.optional(), sim: streamHealthSchema.optional() })
      .meta({ description: 'Per source whose `websocket` is on' }),
    rate_budget: z
      .object({
        needed: z.number().meta({ description: 'REST requests per minute the symbols need at the current cadence' }),
        available: z.number().meta({ description: 'rate_limit_per_min' }),
        requests_per_cycle: z.number().int(),
        interval_ms: z.number().int().meta({ description: 'The cadence REST cycles run at (stretched when needed > available)' }),
        stretched: z.boolean(),
      })
      .nullable()
      .meta({ description: 'null on the simulated market' }),
  })
  .meta({ id: 'CollectorStatus' });

export const orderSchema = z
  .object({
    client_order_id: z.string(),
    broker_order_id: z.string().nullable(),
    strategy: z.string(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    qty: z.number(),
    type: z.enum(['market', 'limit', 'stop', 'stop_limit', 'trailing_stop']),
    limit_price: z.number().nullable(),
    stop_price: z.number().nullable().meta({ description: 'stop and stop_limit: the trigger; trailing_stop: the initial stop when one was given' }),
    trail: z
      .union([z.object({ amount: z.number() }), z.object({ percent: z.number() })])
      .nullable()
      .meta({ description: 'trailing_stop: the distance kept from the best price' }),
    tif: z.enum(['day', 'gtc', 'ioc']),
    outside_rth: z.boolean(),
    group_id: z.string().nullable().meta({ description: "The legs of one bracket share it (the entry's client order id)" }),
    role: z.enum(['entry', 'take_profit', 'stop_loss']).nullable(),
    state: z.enum(['pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected']),
    filled_qty: z.number(),
    avg_fill_price: z.number().nullable(),
    commission: z.number(),
    reason: z.string().meta({ description: "The strategy's reason for the order" }),
    reject_reason: z.string().nullable(),
    created_at: iso,
    updated_at: iso,
  })
  .meta({ id: 'Order' });

export const positionSchema = z
  .object({
    symbol: z.string(),
    qty: z.number(),
    avg_price: z.number(),
    last_price: z.number().nullable(),
    market_value: z.number().nullable(),
    unrealized_pnl: z.number().nullable(),
  })
  .meta({ id: 'Position' });

const rung = z.enum(['ibkr-realtime', 'preload', 'cache', 'ibkr-historical']);

export const traderStatusSchema = z.object({
  is_running: z.boolean(),
  symbols: z.array(z.string()),
  bar_size: barSizeSchema.nullable(),
  strategy: z.string().nullable().meta({ description: "The running strategy's name, as its orders carry it (a module's own name)" }),
  strategy_module: z.string().nullable(),
  strategy_params: z.record(z.string(), z.unknown()),
  started_by: z.enum(['config', 'resumed', 'request']).nullable().meta({ description: 'Where the running settings came from: the config at start, the saved session, or POST /live/start' }),
  broker: z.enum(['paper', 'ibkr']).nullable(),
  last_bar_time: isoOrNull,
  bars_collected: z.number().int(),
  signals: z.number().int(),
  positions: z.array(positionSchema),
  open_orders: z.array(orderSchema),
  pnl_today: z.object({ realized: z.number(), unrealized: z.number(), total: z.number() }),
  cash: z.number().nullable(),
  risk: z.object({ killed: z.boolean(), refusals: z.record(z.string(), z.number()), last_refusal: z.string().nullable() }),
  paused_symbols: z.record(z.string(), z.string()).meta({ description: 'symbol -> why its strategy is paused' }),
  strategy_errors: z.number().int(),
  exits: z.record(z.string(), z.number()).nullable().meta({ description: 'The protective exits attached to entries in this session (stop_loss_pct, take_profit_pct, trailing_stop_pct); null: none' }),
  last_signals: z
    .record(z.string(), z.object({ bar_start: isoOrNull, signal: z.string(), reason: z.string(), action: z.string() }))
    .meta({ description: "symbol -> the strategy's last signal, its reason, and what came of it" }),
  cancelled_orders: z.array(z.string()).optional().meta({ description: 'POST /live/stop: the working orders it cancelled' }),
  cancel_errors: z.array(z.string()).optional().meta({ description: 'POST /live/stop: orders it could not cancel, and why' }),
});

export const liveStatusSchema = traderStatusSchema
  .extend({
    feed: z.record(
      z.string(),
      z.object({
        rung: rung.nullable(),
        since: isoOrNull,
        reason: z.string(),
        unavailable: z.record(z.string(), z.string()).meta({ description: 'rung -> why that better rung is not serving' }),
      }),
    ),
    feed_switches: z.number().int(),
    ibkr: z.object({ enabled: z.boolean(), connection: z.string(), errors: z.record(z.string(), z.number()) }).nullable(),
  })
  .meta({ id: 'LiveStatus' });

export const ordersSchema = z.object({ orders: z.array(orderSchema) });

const timeText = z.string().meta({ description: 'ISO-8601 time or epoch ms', example: '2026-01-05T14:30:00Z' });
const limitText = z.string().regex(/^\d+$/, 'a whole number from 1 to 10000').meta({ description: 'At most this many, newest kept (1 to 10000, default 1000)' });
export const ordersQuery = z
  .object({
    symbol: z.string().min(1).max(20).optional().meta({ description: 'Only this symbol (any case)' }),
    since: timeText.optional().meta({ description: 'Only orders updated at or after this time (ISO-8601 or epoch ms)' }),
    state: z.enum(['pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected', 'open', 'final']).optional().meta({ description: 'One state, or open (not final) or final' }),
    limit: limitText.optional(),
  })
  .strict();
export const fillsQuery = z
  .object({
    symbol: z.string().min(1).max(20).optional().meta({ description: 'Only this symbol (any case)' }),
    since: timeText.optional().meta({ description: 'Only fills at or after this time (ISO-8601 or epoch ms)' }),
    limit: limitText.optional(),
  })
  .strict();
export const fillSchema = z
  .object({
    exec_id: z.string(),
    client_order_id: z.string(),
    strategy: z.string(),
    symbol: z.string(),
    side: z.enum(['buy', 'sell']),
    qty: z.number(),
    price: z.number(),
    commission: z.number(),
    time: iso,
  })
  .meta({ id: 'Fill' });
export const fillsSchema = z.object({ fills: z.array(fillSchema) });
export const settingsSchema = z.object({
  settings: z.array(
    z.object({
      key: z.string().meta({ example: 'collector.symbols' }),
      value: z.unknown(),
      source: z.string().meta({ description: 'default, file <path>, environment <VAR>, resumed (saved session), POST /live/start' }),
    }),
  ),
});
export const positionsSchema = z.object({ positions: z.array(positionSchema) });

export const wireBarSchema = z
  .object({
    t: iso.meta({ description: 'Start of the bar, ISO-8601 UTC' }),
    o: z.number(),
    h: z.number(),
    l: z.number(),
    c: z.number(),
    v: z.number(),
    vw: z.number().nullable(),
    n: z.number().int().nullable(),
    source: z.enum(BAR_SOURCES),
  })
  .meta({ id: 'Bar' });
export const barsSchema = z.object({ symbol: z.string(), bar_size: barSizeSchema, bars: z.array(wireBarSchema) });

export const dashboardBarsQuery = z
  .object({
    limit: z
      .string()
      .regex(/^\d+$/, 'must be a whole number from 1 to 10000')
      .transform(Number)
      .pipe(z.number().int().min(1, 'must be from 1 to 10000').max(10_000, 'must be from 1 to 10000'))
      .default(2000)
      .meta({ description: 'Newest bars per symbol (default 2000)', example: '10000' }),
  })
  .strict();

const numbers = z.array(z.number());
export const dashboardBarsSchema = z
  .object({
    bar_size: z.string().meta({ description: "The loop's bar size (the collector's when no loop runs)" }),
    symbols: z.array(z.string()).meta({ description: 'What the loop trades and the collector collects, sorted' }),
    bars: z
      .record(z.string(), z.object({ t: numbers.meta({ description: 'Bar starts, epoch seconds, oldest first' }), o: numbers, h: numbers, l: numbers, c: numbers, v: numbers }))
      .meta({ description: 'Per symbol, its newest bars in columns (the same index is one bar)' }),
  })
  .meta({ id: 'DashboardBars' });

export const feedSwitchesQuery = z
  .object({
    symbol: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]{0,9}(?:[.-][A-Za-z0-9]{1,4})?$/, 'is not a ticker symbol')
      .optional()
      .meta({ description: 'Only this symbol (default: every symbol with a switch)', example: 'QQQ' }),
  })
  .strict();

export const feedSwitchesSchema = z
  .object({
    switches: z
      .record(
        z.string(),
        z.array(
          z.object({
            id: z.string().meta({ description: "The feed_switch event's id on /events" }),
            at: z.string().meta({ description: 'ISO time of the switch' }),
            rung: z.string().nullable().meta({ description: 'The rung serving from then on (ibkr-realtime, preload, cache, ibkr-historical); null when none can' }),
            reason: z.string(),
          }),
        ),
      )
      .meta({ description: 'Per symbol, its feed switches since the server started, oldest first' }),
    per_symbol_limit: z.number().int().meta({ description: 'How many switches are kept per symbol (the oldest go first)' }),
  })
  .meta({ id: 'FeedSwitches' });

export const dashboardInfoSchema = z
  .object({
    token_required: z.boolean().meta({ description: 'POSTs need Authorization: Bearer <BARKEEP_API_TOKEN>' }),
    reads_need_token: z.boolean().meta({ description: 'GETs need the token too (the server is bound to a non-loopback address)' }),
    event_types: z.array(z.string()),
  })
  .meta({ id: 'DashboardInfo' });

// ---- the schemas hold to the types the server sends (compile-time, both ways) ---------------

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only when T is true: the schema-type checks below. */
export function holds<_T extends true>(): void {}
holds<Same<z.output<typeof orderSchema>, OrderView>>();
holds<Same<z.output<typeof positionSchema>, PositionView>>();
holds<Same<z.output<typeof traderStatusSchema>, TraderStatus>>();
holds<Same<z.output<typeof actorInfoSchema>, ActorInfo>>();
// Bar sources are a wider string in WireBar; the schema names them.
holds<z.output<typeof wireBarSchema> extends WireBar ? true : false>();
holds<CollectorStatus extends z.output<typeof collectorStatusSchema> ? true : false>();
holds<z.output<typeof collectorStatusSchema> extends CollectorStatus ? true : false>();
