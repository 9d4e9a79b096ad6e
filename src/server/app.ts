/**
 * The HTTP API (fastify). Handlers validate at the edge (zod: a 400 names the field) and forward
 * to the actors as typed control calls; they never touch an actor's state directly.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { exitsSchema } from '../config/schema.ts';
import { BAR_SIZES } from '../market/bar-size.ts';
import { isValidSymbol } from '../market/bar.ts';
import type { Supervisor } from '../runtime/supervisor.ts';
import type { CollectorRequests } from '../actors/collector/protocol.ts';
import type { ArbiterRequests } from '../actors/arbiter/protocol.ts';
import type { TraderRequests } from '../actors/trader/protocol.ts';
import type { BarReader } from '../storage/types.ts';
import type { Logger } from '../runtime/log.ts';
import { HttpError, fromZod, sendError } from './errors.ts';
import { MetricsRegistry } from './metrics.ts';
import { registerBarsRoutes } from './routes/bars.ts';

export interface ServerDeps {
  supervisor: Supervisor;
  bars: BarReader;
  log: Logger;
  /** When set, every POST needs `Authorization: Bearer <token>`. */
  apiToken: string | null;
  /** Enables POST /actors/{name}/crash. */
  faults: boolean;
  defaults: {
    collector: { symbols: string[]; bar_size: (typeof BAR_SIZES)[number] };
    live: { symbols: string[]; bar_size: (typeof BAR_SIZES)[number]; strategy: string; strategy_params: Record<string, unknown>; broker: 'paper' | 'ibkr' };
  };
}

const symbol = z.string().refine(isValidSymbol, 'not a ticker symbol (e.g. QQQ, BRK.B)');
const symbols = z.array(symbol).min(1, 'needs at least one symbol').max(500, 'at most 500 symbols');
const barSize = z.enum(BAR_SIZES);

const collectorStartBody = z.object({ symbols: symbols.optional(), bar_size: barSize.optional() }).strict();
const liveStartBody = z
  .object({
    symbols: symbols.optional(),
    bar_size: barSize.optional(),
    strategy: z.string().min(1).optional(),
    strategy_params: z.record(z.string(), z.unknown()).optional(),
    broker: z.enum(['paper', 'ibkr']).optional(),
    exits: exitsSchema.nullable().optional(),
  })
  .strict();
const killBody = z.object({ flatten: z.boolean().optional() }).strict();

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw fromZod(parsed.error);
  return parsed.data;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

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

  if (deps.apiToken) {
    const token = deps.apiToken;
    app.addHook('onRequest', async (req, reply) => {
      if (req.method !== 'POST') return;
      if (!tokenMatches(req.headers.authorization, token)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({ error: 'unauthorized', message: 'this POST needs Authorization: Bearer <BARKEEP_API_TOKEN>' });
      }
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
