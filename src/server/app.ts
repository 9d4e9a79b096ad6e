/**
 * The HTTP API (fastify). Handlers validate at the edge (zod: a 400 names the field) and forward
 * to the actors as typed control calls; they never touch an actor's state directly.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { BAR_SIZES } from '../market/bar-size.ts';
import type { Supervisor } from '../runtime/supervisor.ts';
import type { CollectorRequests } from '../actors/collector/protocol.ts';
import type { ArbiterRequests } from '../actors/arbiter/protocol.ts';
import type { TraderRequests } from '../actors/trader/protocol.ts';
import type { BarReader } from '../storage/types.ts';
import type { Logger } from '../runtime/log.ts';
import { HttpError, fromZod, sendError } from './errors.ts';
import { MetricsRegistry } from './metrics.ts';
import { registerBacktestRoutes, type BacktestRouteDeps } from './routes/backtests.ts';
import { registerBarsRoutes } from './routes/bars.ts';
import { LIMITS, clientErrorHandler, frameworkErrors, jsonShapeProblem, notFoundBody, serverFactory } from './limits.ts';
import { offlineTrader } from './trader-offline.ts';
import type { Storage } from '../storage/storage.ts';
import { completeLiveStart, ensureCollected, registerOpsRoutes } from './routes/ops.ts';
import type { OrderJournal } from '../storage/types.ts';
import type { Setting } from '../config/sources.ts';
import type { LiveStart } from '../actors/trader/protocol.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerDashboardBarsRoutes } from './routes/dashboard-bars.ts';
import { canRollUp } from '../market/aggregate.ts';
import { registerEventRoutes } from './routes/events.ts';
import type { EventHub } from './event-hub.ts';
import { collectorStartBody, killBody, liveStartBody } from './schemas.ts';
import { isLoopback, isPublicPath, tokenMatches } from './auth.ts';
import { HealthCheck, type HealthOptions } from './health.ts';

export interface ServerDeps {
  supervisor: Supervisor;
  bars: BarReader;
  log: Logger;
  /** When set, every POST needs `Authorization: Bearer <token>`. */
  apiToken: string | null;
  /** Enables POST /actors/{name}/crash. */
  faults: boolean;
  /** Whole-request deadline (headers and body), ms; default LIMITS.requestTimeoutMs. */
  requestTimeoutMs?: number;
  /** The journal and checkpoints, read when the trader actor is not running. */
  storage?: Pick<Storage, 'orders' | 'checkpoints'>;
  /** The address the server binds: reads need the token too unless it is a loopback address. */
  host?: string;
  /** The actors' events, streamed on GET /events (the engine wires the supervisor into it). */
  events?: EventHub;
  version?: string;
  /** POST/GET /backtests (on the backtest pool); absent, the routes are not served. */
  backtests?: BacktestRouteDeps;
  defaults: {
    collector: { symbols: string[]; bar_size: (typeof BAR_SIZES)[number] };
    live: LiveStart;
  };
  /** The order journal, read directly for GET /orders and /fills. */
  journal: OrderJournal;
  /** Every setting with its source, for GET /config. */
  settings?: Setting[];
  dataDir?: string;
  /** What /health needs to judge the collector (health.ts); absent, only the actors' states count. */
  health?: HealthOptions;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

/** Every route the server registered (`GET /health`), for the OpenAPI coverage test. */
export const registeredRoutes = new WeakMap<FastifyInstance, string[]>();

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    // Through logController: the top-level disableRequestLogging is deprecated and warns on every start.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: LIMITS.bodyBytes,
    routerOptions: { maxParamLength: LIMITS.maxParamLength },
    frameworkErrors,
    clientErrorHandler,
    serverFactory: serverFactory(deps.requestTimeoutMs),
    // Bodies and queries are validated with zod at the edge and no route declares a JSON schema,
    // so fastify's default compilers (ajv, fast-json-stringify: a tenth of the main thread's
    // start-up) are never needed: these stand-ins keep fastify from loading them.
    schemaController: { compilersFactory: { buildValidator: noRouteSchemas, buildSerializer: noRouteSchemas } },
  });
  const sup = deps.supervisor;
  const collector = sup.handle<CollectorRequests>('collector');
  const arbiter = sup.handle<ArbiterRequests>('arbiter');
  const trader = sup.handle<TraderRequests>('trader');
  const metrics = new MetricsRegistry(sup);
  const offline = deps.storage ? offlineTrader(deps.storage) : null;
  // Parts assembled beside the server (cluster mode) register their collectors here.
  app.decorate('metricsRegistry', metrics.registry);

  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) => reply.code(404).send(notFoundBody(req.method, req.url)));
  // A POST with no body (curl -X POST) means "use the defaults".
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(s));
    } catch (err) {
      done(new HttpError(400, 'bad_json', `body is not valid JSON: ${(err as Error).message.slice(0, 120)}`, 'body'), undefined);
    }
  });

  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) routes.push(`${m} ${r.url}`);
  });
  registeredRoutes.set(app, routes);

  // POSTs need the token when one is set; reads need it too on a non-loopback bind (the page and
  // its assets stay public so it can ask for the token). EventSource cannot send headers: /events
  // also takes ?access_token=.
  const readsNeedToken = Boolean(deps.apiToken) && !isLoopback(deps.host ?? '127.0.0.1');
  if (deps.apiToken) {
    const token = deps.apiToken;
    app.addHook('onRequest', async (req, reply) => {
      const isPost = req.method === 'POST';
      if (!isPost && (!readsNeedToken || isPublicPath(req.url))) return;
      const queryToken = req.url.startsWith('/events') ? (req.query as { access_token?: string } | undefined)?.access_token : undefined;
      if (tokenMatches(req.headers.authorization, token) || (queryToken !== undefined && tokenMatches(`Bearer ${queryToken}`, token))) return;
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({
          error: 'unauthorized',
          field: 'authorization',
          message: isPost ? 'this POST needs Authorization: Bearer <BARKEEP_API_TOKEN>' : 'on a non-loopback address every request needs Authorization: Bearer <BARKEEP_API_TOKEN>',
        });
    });
  }

  const health = new HealthCheck(sup, deps.health ?? null);
  app.get('/health', async (_req, reply) => {
    const { code, body } = health.check();
    return reply.code(code).send(body);
  });
  app.get('/actors', async () => ({ actors: sup.list() }));
  app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.text()));

  if (deps.faults) {
    app.post<{ Params: { name: string } }>('/actors/:name/crash', async (req, reply) => {
      if (!sup.names().includes(req.params.name)) throw new HttpError(404, 'not_found', `no actor named ${req.params.name}`, 'name');
      // The actor may die before it answers: that is the drill working, not a failure.
      await sup.crash(req.params.name).catch((err: unknown) => {
        if (sup.list().find((x) => x.name === req.params.name)?.state === 'running') throw err;
      });
      return reply.code(202).send({ crashing: req.params.name });
    });
  }

  // Revives an actor the supervisor gave up on (failed after too many restarts); behind the token.
  app.post<{ Params: { name: string } }>('/actors/:name/restart', async (req, reply) => {
    if (!sup.names().includes(req.params.name)) throw new HttpError(404, 'actor_not_found', `no actor named ${excerptName(req.params.name)}`, 'name');
    const revived = await sup.revive(req.params.name);
    if (!revived) throw new HttpError(409, 'actor_not_failed', `${req.params.name} has not failed; only a failed actor is restarted`, 'name');
    return reply.code(202).send({ restarting: req.params.name });
  });

  app.post('/data-collector/start', async (req) => {
    const body = parseBody(collectorStartBody, req.body);
    const symbols = body.symbols ?? deps.defaults.collector.symbols;
    const barSize = body.bar_size ?? deps.defaults.collector.bar_size;
    // What the trading loop trades stays collected: dropping it would starve the loop.
    const t = await trader.call('status', {}).catch(() => null);
    // The loop's bar size must stay servable: collected as is, or rolled up from the collected one.
    if (t?.is_running && t.bar_size && t.bar_size !== barSize && !canRollUp(barSize, t.bar_size)) {
      throw new HttpError(
        409,
        'conflict',
        `bar_size: the trading loop trades ${t.bar_size} bars, which cannot be built from ${barSize}; stop it first (POST /live/stop) or collect ${t.bar_size} (or a size it is a multiple of)`,
        'bar_size',
      );
    }
    const kept = t?.is_running ? t.symbols.filter((s) => !symbols.includes(s)) : [];
    const status = await collector.call('start', { symbols: [...symbols, ...kept], bar_size: barSize });
    return kept.length > 0 ? { ...status, kept_for_trading: kept } : status;
  });
  app.post('/data-collector/stop', async () => collector.call('stop', {}));
  app.get('/data-collector/status', async () => collector.call('status', {}));

  app.post('/live/start', { bodyLimit: LIMITS.liveStartBodyBytes }, async (req) => {
    const body = parseBody(liveStartBody, req.body);
    const shape = body.strategy_params && jsonShapeProblem(body.strategy_params, 'strategy_params');
    if (shape) throw new HttpError(400, 'bad_request', shape[1], shape[0]);
    const t = await trader.call('status', {});
    const current: LiveStart | null =
      t.is_running && t.bar_size && t.broker
        ? { symbols: t.symbols, bar_size: t.bar_size, strategy: t.strategy ?? deps.defaults.live.strategy, strategy_params: t.strategy_params, broker: t.broker, strategy_module: t.strategy_module }
        : null;
    const { exits, ...rest } = body;
    const live = completeLiveStart({ ...rest, symbols: rest.symbols?.map((s) => s.toUpperCase()) }, current, deps.defaults.live);
    const collecting = await ensureCollected(collector, live);
    // exits absent: the configured exits; null: none for this session.
    await trader.call('start', { ...live, ...(exits !== undefined ? { exits } : {}) });
    const status = await liveStatus();
    return collecting.length > 0 ? { ...status, collecting_added: collecting } : status;
  });
  app.post('/live/stop', async () => {
    const stopped = await trader.call('stop', {});
    return { ...(await liveStatus()), cancelled_orders: stopped.cancelled_orders ?? [], cancel_errors: stopped.cancel_errors ?? [] };
  });
  app.get('/live/status', async () => liveStatus());
  app.post('/live/kill', async (req, reply) => {
    const body = parseBody(killBody, req.body);
    const down = traderDown();
    if (down && offline) {
      const r = await offline.kill(down);
      // Latched either way; a 503 when open orders were left at the broker, listed by id.
      if (r.could_not_cancel.length) return reply.code(503).send({ error: 'trader_unavailable', field: null, ...r });
      return reply.code(202).send(r);
    }
    await trader.call('kill', { flatten: body.flatten ?? false });
    return liveStatus();
  });
  app.post('/live/resume', async () => {
    await trader.call('resume', {});
    return liveStatus();
  });
  registerOpsRoutes(app, { journal: deps.journal, settings: deps.settings ?? [], trader, collector, liveDefaults: deps.defaults.live });
  app.get('/positions', async () => {
    const down = traderDown();
    if (down && offline) return { positions: offline.positions(), trader: 'unavailable', trader_reason: down };
    return { positions: await trader.call('positions', {}) };
  });

  registerBarsRoutes(app, { bars: deps.bars });
  registerDashboardBarsRoutes(app, {
    bars: deps.bars,
    async shown() {
      const [t, c] = await Promise.all([trader.call('status', {}).catch(() => null), collector.call('status', {}).catch(() => null)]);
      const symbols = [...new Set([...(t?.symbols ?? []), ...(c?.symbols ?? [])])].sort();
      const bar_size = (t?.is_running && t.bar_size) || c?.bar_size || deps.defaults?.collector.bar_size || '1Min';
      return { symbols, bar_size };
    },
  });
  if (deps.events) registerEventRoutes(app, deps.events);
  registerDashboardRoutes(app, {
    faults: deps.faults,
    backtests: Boolean(deps.backtests),
    tokenRequired: Boolean(deps.apiToken),
    readsNeedToken,
    version: deps.version,
  });
  if (deps.backtests) registerBacktestRoutes(app, deps.backtests);

  /** Why the trader cannot answer (failed, restarting...), or null while it runs. */
  function traderDown(): string | null {
    const info = sup.list().find((a) => a.name === 'trader');
    return info && info.state !== 'running' ? `trader is ${info.state}` : null;
  }

  async function liveStatus() {
    const down = traderDown();
    if (down && offline) return offline.status(down);
    const [t, a] = await Promise.all([trader.call('status', {}), arbiter.call('status', {}).catch(() => null)]);
    return {
      ...t,
      feed: Object.fromEntries(Object.entries(a?.feed ?? {}).map(([sym, f]) => [sym, { rung: f.rung, since: f.since, reason: f.reason, unavailable: f.unavailable }])),
      feed_switches: a?.switches ?? 0,
      ibkr: a?.ibkr ?? null,
    };
  }

  return app;
}

function noRouteSchemas(): () => never {
  return () => {
    throw new Error('barkeep routes validate with zod; a route JSON schema needs fastify schema compilers (src/server/app.ts)');
  };
}

function excerptName(name: string): string {
  return JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}...` : name);
}
