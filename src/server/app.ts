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
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerEventRoutes } from './routes/events.ts';
import type { EventHub } from './event-hub.ts';
import { collectorStartBody, killBody, liveStartBody } from './schemas.ts';
import { isLoopback, isPublicPath, tokenMatches } from './auth.ts';

export interface ServerDeps {
  supervisor: Supervisor;
  bars: BarReader;
  log: Logger;
  /** When set, every POST needs `Authorization: Bearer <token>`. */
  apiToken: string | null;
  /** Enables POST /actors/{name}/crash. */
  faults: boolean;
  /** The address the server binds: reads need the token too unless it is a loopback address. */
  host?: string;
  /** The actors' events, streamed on GET /events (the engine wires the supervisor into it). */
  events?: EventHub;
  version?: string;
  /** POST/GET /backtests (on the backtest pool); absent, the routes are not served. */
  backtests?: BacktestRouteDeps;
  defaults: {
    collector: { symbols: string[]; bar_size: (typeof BAR_SIZES)[number] };
    live: { symbols: string[]; bar_size: (typeof BAR_SIZES)[number]; strategy: string; strategy_params: Record<string, unknown>; broker: 'paper' | 'ibkr' };
  };
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
  });
  const sup = deps.supervisor;
  const collector = sup.handle<CollectorRequests>('collector');
  const arbiter = sup.handle<ArbiterRequests>('arbiter');
  const trader = sup.handle<TraderRequests>('trader');
  const metrics = new MetricsRegistry(sup);
  // Parts assembled beside the server (cluster mode) register their collectors here.
  app.decorate('metricsRegistry', metrics.registry);

  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }));
  // A POST with no body (curl -X POST) means "use the defaults".
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(s));
    } catch (err) {
      done(new HttpError(400, 'bad_request', `body is not valid JSON: ${(err as Error).message}`, 'body'), undefined);
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
          message: isPost
            ? 'this POST needs Authorization: Bearer <BARKEEP_API_TOKEN>'
            : 'on a non-loopback address every request needs Authorization: Bearer <BARKEEP_API_TOKEN>',
        });
    });
  }

  app.get('/health', async (_req, reply) => {
    const h = sup.health();
    return reply.code(h.ok ? 200 : 503).send({ status: h.ok ? 'ok' : 'degraded', reasons: h.reasons });
  });
  app.get('/actors', async () => ({ actors: sup.list() }));
  app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.text()));

  if (deps.faults) {
    app.post<{ Params: { name: string } }>('/actors/:name/crash', async (req, reply) => {
      if (!sup.names().includes(req.params.name)) throw new HttpError(404, 'not_found', `no actor named ${req.params.name}`, 'name');
      await sup.crash(req.params.name);
      return reply.code(202).send({ crashing: req.params.name });
    });
  }

  app.post('/data-collector/start', async (req) => {
    const body = parseBody(collectorStartBody, req.body);
    return collector.call('start', {
      symbols: body.symbols ?? deps.defaults.collector.symbols,
      bar_size: body.bar_size ?? deps.defaults.collector.bar_size,
    });
  });
  app.post('/data-collector/stop', async () => collector.call('stop', {}));
  app.get('/data-collector/status', async () => collector.call('status', {}));

  app.post('/live/start', async (req) => {
    const body = parseBody(liveStartBody, req.body);
    const d = deps.defaults.live;
    await trader.call('start', {
      symbols: body.symbols ?? d.symbols,
      bar_size: body.bar_size ?? d.bar_size,
      strategy: body.strategy ?? d.strategy,
      strategy_params: body.strategy_params ?? (body.strategy ? {} : d.strategy_params),
      broker: body.broker ?? d.broker,
      // Absent: the configured exits; null: none for this session.
      ...(body.exits !== undefined ? { exits: body.exits } : {}),
    });
    return liveStatus();
  });
  app.post('/live/stop', async () => {
    await trader.call('stop', {});
    return liveStatus();
  });
  app.get('/live/status', async () => liveStatus());
  app.post('/live/kill', async (req) => {
    const body = parseBody(killBody, req.body);
    await trader.call('kill', { flatten: body.flatten ?? false });
    return liveStatus();
  });
  app.post('/live/resume', async () => {
    await trader.call('resume', {});
    return liveStatus();
  });
  app.get('/orders', async () => ({ orders: await trader.call('orders', {}) }));
  app.get('/positions', async () => ({ positions: await trader.call('positions', {}) }));

  registerBarsRoutes(app, { bars: deps.bars });
  if (deps.events) registerEventRoutes(app, deps.events);
  registerDashboardRoutes(app, {
    faults: deps.faults,
    backtests: Boolean(deps.backtests),
    tokenRequired: Boolean(deps.apiToken),
    readsNeedToken,
    version: deps.version,
  });
  if (deps.backtests) registerBacktestRoutes(app, deps.backtests);

  async function liveStatus() {
    const [t, a] = await Promise.all([trader.call('status', {}), arbiter.call('status', {}).catch(() => null)]);
    return {
      ...t,
      feed: Object.fromEntries(
        Object.entries(a?.feed ?? {}).map(([sym, f]) => [sym, { rung: f.rung, since: f.since, reason: f.reason, unavailable: f.unavailable }]),
      ),
      feed_switches: a?.switches ?? 0,
      ibkr: a?.ibkr ?? null,
    };
  }

  return app;
}
