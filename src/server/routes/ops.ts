/**
 * Routes for operating barkeep day to day: GET /orders (filtered), GET /fills, GET /config, and the
 * rules that keep the collector and the trading loop consistent:
 *
 * - POST /live/start with part of a body keeps the running session's other settings (strategy,
 *   params, module, bar size, broker); with none running, the config's.
 * - The loop only starts on what is collected: a symbol the collector does not collect is added to
 *   its symbols; a bar size it cannot serve answers 409 naming what is missing.
 * - POST /data-collector/start keeps collecting the symbols being traded (and refuses to change the
 *   bar size under a running loop).
 *
 * Orders and fills are read from the order journal in LMDB directly (not through the trader), so
 * they answer even while the trader restarts.
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { ActorHandle } from '../../runtime/supervisor.ts';
import type { CollectorRequests } from '../../actors/collector/protocol.ts';
import type { LiveStart, TraderRequests, TraderStatus } from '../../actors/trader/protocol.ts';
import { orderView } from '../../actors/trader/actor.ts';
import type { OrderJournal } from '../../storage/types.ts';
import { fillsOf, filterOrders, type FillsQuery, type OrdersQuery } from '../../actors/trader/order-queries.ts';
import { fillsQuery, ordersQuery } from '../schemas.ts';
import { RuntimeError } from '../../runtime/protocol.ts';
import type { Setting } from '../../config/sources.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { canRollUp } from '../../market/aggregate.ts';
import { HttpError, fromZod } from '../errors.ts';

/** `since` as epoch ms, or a 400 naming it. */
function sinceMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new HttpError(400, 'bad_request', `since: ${JSON.stringify(text)} is not a time (ISO-8601 or epoch ms)`, 'since');
  return ms;
}

function limitOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!(n >= 1 && n <= 10_000)) throw new HttpError(400, 'bad_request', `limit: ${text} is not from 1 to 10000`, 'limit');
  return n;
}

function parseQuery<T>(schema: z.ZodType<T>, q: unknown): T {
  const parsed = schema.safeParse(q ?? {});
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

/** Bar sizes the loop can trade from bars collected at `collected`: the same size, or one the collector rolls up (rollup.ts). */
function servable(collected: BarSize, traded: BarSize): boolean {
  return collected === traded || canRollUp(collected, traded);
}

export interface OpsDeps {
  journal: OrderJournal;
  settings: Setting[];
  trader: ActorHandle<TraderRequests>;
  collector: ActorHandle<CollectorRequests>;
  liveDefaults: LiveStart;
}

/** A partial POST /live/start body completed from the running session, else from the config. */
export function completeLiveStart(body: Partial<LiveStart>, current: LiveStart | null, defaults: LiveStart): LiveStart {
  const base = current ?? defaults;
  const strategyChanged = body.strategy !== undefined && body.strategy !== base.strategy;
  const moduleChanged = body.strategy_module !== undefined && body.strategy_module !== (base.strategy_module ?? null);
  const fresh = strategyChanged || moduleChanged;
  return {
    symbols: body.symbols ?? base.symbols,
    bar_size: body.bar_size ?? base.bar_size,
    strategy: body.strategy ?? (body.strategy_module ? 'module' : base.strategy),
    // Params belong to their strategy: a new strategy starts from its own defaults, not the old one's params.
    strategy_params: body.strategy_params ?? (fresh ? {} : (base.strategy_params ?? {})),
    broker: body.broker ?? base.broker,
    strategy_module: body.strategy_module !== undefined ? body.strategy_module : strategyChanged && body.strategy !== 'module' ? null : (base.strategy_module ?? null),
  };
}

/** Makes sure the collector feeds what the loop needs: adds missing symbols, or 409 naming what is missing. */
export async function ensureCollected(collector: ActorHandle<CollectorRequests>, live: LiveStart): Promise<string[]> {
  const c = await collector.call('status', {});
  if (!servable(c.bar_size, live.bar_size) && (c.is_running || c.symbols.length > 0)) {
    throw new HttpError(
      409,
      'conflict',
      `bar_size: the collector collects ${c.bar_size} bars and the loop would trade ${live.bar_size}, which cannot be built from them (only a multiple of the collected size, or 1Day); start the collector on ${live.bar_size} (POST /data-collector/start {"bar_size": "${live.bar_size}"}) or trade ${c.bar_size}`,
      'bar_size',
    );
  }
  const missing = live.symbols.filter((s) => !c.symbols.includes(s));
  if (missing.length === 0 && c.is_running) return [];
  // A collector already feeding symbols keeps its bar size (larger traded sizes are rolled up from it).
  const barSize = c.is_running || c.symbols.length > 0 ? c.bar_size : live.bar_size;
  await collector.call('start', { symbols: [...c.symbols.filter((s) => c.is_running || live.symbols.includes(s)), ...missing], bar_size: barSize });
  return missing;
}

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  // Asked of the trader, whose thread has just written what it decided; read from the journal
  // here when the trader cannot answer (restarting, failed), so the operator is never blind.
  const actorDown = (err: unknown) => err instanceof RuntimeError;
  app.get('/orders', async (req) => {
    const raw = parseQuery(ordersQuery, req.query);
    const q: OrdersQuery = { symbol: raw.symbol?.toUpperCase(), since: sinceMs(raw.since), state: raw.state, limit: limitOf(raw.limit) };
    try {
      return { orders: await deps.trader.call('orders', q) };
    } catch (err) {
      if (!actorDown(err)) throw err;
      return { orders: filterOrders(deps.journal.all(), q).map(orderView), trader: 'unavailable', trader_reason: (err as Error).message };
    }
  });
  app.get('/fills', async (req) => {
    const raw = parseQuery(fillsQuery, req.query);
    const q: FillsQuery = { symbol: raw.symbol?.toUpperCase(), since: sinceMs(raw.since), limit: limitOf(raw.limit) };
    try {
      return { fills: await deps.trader.call('fills', q) };
    } catch (err) {
      if (!actorDown(err)) throw err;
      return { fills: fillsOf(deps.journal.all(), q), trader: 'unavailable', trader_reason: (err as Error).message };
    }
  });
  app.get('/config', async () => {
    const t = await deps.trader.call('status', {}).catch(() => null);
    return { settings: withSession(deps.settings, t) };
  });
}

/** The config's settings, with the trader's running session laid over them where it differs. */
export function withSession(settings: Setting[], t: TraderStatus | null): Setting[] {
  if (!t || !t.is_running || t.started_by === 'config' || !t.started_by) return settings;
  const source = t.started_by === 'resumed' ? 'resumed (saved session)' : 'POST /live/start';
  const live: Record<string, unknown> = {
    'trader.symbols': t.symbols,
    'trader.bar_size': t.bar_size,
    'trader.strategy_params': t.strategy_params,
    'trader.strategy_module': t.strategy_module,
    'trader.broker': t.broker,
  };
  return settings.map((s) => (s.key in live ? { ...s, value: live[s.key], source } : s));
}
