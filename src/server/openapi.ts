/**
 * `GET /openapi.json`: an OpenAPI 3.1 description of every route, generated from the zod schemas
 * the routes validate with and the response schemas in schemas.ts (z.toJSONSchema; JSON Schema
 * 2020-12 is OpenAPI 3.1's schema dialect). Named schemas (`.meta({ id })`) become
 * components/schemas. A route added to the server must be added to ROUTES here:
 * test/server/openapi.test.ts fails for a route the document does not describe.
 */
import { z } from 'zod';
import { MAX_BARS_LIMIT, barsQuery } from './routes/bars.ts';
import { backtestBody } from './routes/backtests.ts';
import { backtestIdParams, backtestJobSchema, backtestListSchema, backtestSummarySchema } from './backtest-schemas.ts';
import {
  actorNameParams,
  actorsSchema,
  barsSchema,
  collectorStartBody,
  collectorStatusSchema,
  crashSchema,
  restartSchema,
  dashboardInfoSchema,
  errorSchema,
  eventsQuery,
  feedSwitchesQuery,
  dashboardBarsQuery,
  dashboardBarsSchema,
  feedSwitchesSchema,
  healthSchema,
  killBody,
  liveStartBody,
  liveStatusSchema,
  fillsQuery,
  fillsSchema,
  ordersQuery,
  ordersSchema,
  positionsSchema,
  settingsSchema,
  symbolParams,
} from './schemas.ts';

type Method = 'GET' | 'POST';

interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  mediaType?: string;
}

export interface RouteDoc {
  method: Method;
  /** The fastify form: `/bars/:symbol`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  params?: z.ZodObject;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The route calls an actor: 503 while it is restarting or stopped. */
  callsActor?: boolean;
  responses: Record<number, ResponseDoc>;
  /** Only registered when BARKEEP_FAULTS=1. */
  faultsOnly?: boolean;
  /** Only registered when the server has that part (the engine always gives it the backtest pool). */
  optional?: 'backtests';
}

const json = (description: string, schema: z.ZodType): ResponseDoc => ({ description, schema });
const collectorStatus = { 200: json("The collector's status", collectorStatusSchema) };
const liveStatus = { 200: json('The live status', liveStatusSchema) };

export const ROUTES: RouteDoc[] = [
  {
    method: 'GET',
    path: '/health',
    tag: 'runtime',
    summary: 'Whether every actor runs',
    responses: {
      200: json(
        'Every actor runs; `degraded` with the reasons when the collector is not keeping the bars current (a cycle running past two intervals, or overrun with none completed since)',
        healthSchema,
      ),
      503: json('An actor is restarting, failed or stopped; the reasons name it', healthSchema),
    },
  },
  { method: 'GET', path: '/actors', tag: 'runtime', summary: "Each actor's state, thread, restarts and uptime", responses: { 200: json('The actors', actorsSchema) } },
  {
    method: 'GET',
    path: '/metrics',
    tag: 'runtime',
    summary: 'Prometheus metrics',
    responses: { 200: { description: 'Prometheus text exposition format', schema: z.string(), mediaType: 'text/plain' } },
  },
  {
    method: 'POST',
    path: '/actors/:name/crash',
    tag: 'runtime',
    summary: 'Crash drill: the actor throws inside its thread (only with BARKEEP_FAULTS=1)',
    params: actorNameParams,
    faultsOnly: true,
    responses: { 202: json('The actor is crashing; the supervisor restarts it', crashSchema), 404: json('No actor of that name', errorSchema) },
  },
  {
    method: 'POST',
    path: '/actors/:name/restart',
    tag: 'runtime',
    summary: 'Start again an actor the supervisor gave up on (failed after too many restarts)',
    params: actorNameParams,
    responses: {
      202: json('The actor is starting again', restartSchema),
      404: json('No actor of that name', errorSchema),
      409: json('The actor has not failed', errorSchema),
    },
  },
  {
    method: 'POST',
    path: '/data-collector/start',
    tag: 'collector',
    summary: 'Start collecting bars',
    body: collectorStartBody,
    callsActor: true,
    responses: collectorStatus,
  },
  { method: 'POST', path: '/data-collector/stop', tag: 'collector', summary: 'Stop collecting', callsActor: true, responses: collectorStatus },
  {
    method: 'GET',
    path: '/data-collector/status',
    tag: 'collector',
    summary: "The collector's source, last collection per symbol, errors and rate limits",
    callsActor: true,
    responses: collectorStatus,
  },
  {
    method: 'POST',
    path: '/live/start',
    tag: 'trading',
    summary: 'Start the trading loop',
    body: liveStartBody,
    callsActor: true,
    responses: liveStatus,
  },
  { method: 'POST', path: '/live/stop', tag: 'trading', summary: 'Stop the trading loop', callsActor: true, responses: liveStatus },
  {
    method: 'GET',
    path: '/live/status',
    tag: 'trading',
    summary: 'Bars, feed rung per symbol, positions, open orders, P&L, cash, risk and paused symbols',
    callsActor: true,
    responses: liveStatus,
  },
  {
    method: 'POST',
    path: '/live/kill',
    tag: 'trading',
    summary: 'Kill switch: cancel open orders, optionally flatten, refuse new orders',
    body: killBody,
    callsActor: true,
    responses: { 200: json('The live status (risk.killed is true)', liveStatusSchema) },
  },
  { method: 'POST', path: '/live/resume', tag: 'trading', summary: 'Release the kill switch', callsActor: true, responses: liveStatus },
  {
    method: 'GET',
    path: '/orders',
    tag: 'trading',
    summary: 'Orders from the journal, oldest first, filtered by symbol, time and state',
    query: ordersQuery,
    responses: { 200: json('The orders', ordersSchema) },
  },
  {
    method: 'GET',
    path: '/fills',
    tag: 'trading',
    summary: 'Every fill from the journal, oldest first, filtered by symbol and time',
    query: fillsQuery,
    responses: { 200: json('The fills', fillsSchema) },
  },
  {
    method: 'GET',
    path: '/config',
    tag: 'runtime',
    summary: 'Every effective setting and where it came from (secrets redacted)',
    description: 'What `barkeep config show` prints: default, file, environment, or the running trading session (resumed, POST /live/start).',
    responses: { 200: json('The settings', settingsSchema) },
  },
  { method: 'GET', path: '/positions', tag: 'trading', summary: 'Open positions', callsActor: true, responses: { 200: json('The positions', positionsSchema) } },
  {
    method: 'GET',
    path: '/bars/:symbol',
    tag: 'bars',
    summary: 'Cached bars of one symbol, oldest first',
    description: `Without \`from\`, the newest \`limit\` bars (up to \`to\`); with \`from\`, the first \`limit\` from there on. \`from\`/\`to\` take ISO-8601 (New York time without an offset), a YYYY-MM-DD New York date, or epoch ms. \`limit\` is 1 to ${MAX_BARS_LIMIT} (default 100).`,
    params: symbolParams,
    query: barsQuery,
    responses: { 200: json('The bars', barsSchema) },
  },
  {
    method: 'POST',
    path: '/backtests',
    tag: 'backtests',
    summary: 'Start a backtest, or a sweep when `grid` is given, on the backtest pool',
    description: 'The options of `barkeep backtest` as JSON. Answers 202 at once with the job; GET /backtests/{id} gives its progress, then its report.',
    body: backtestBody,
    optional: 'backtests',
    responses: {
      202: json('The job, running', backtestSummarySchema),
      429: json('Too many backtests are running', errorSchema),
      503: json('The server is closing', errorSchema),
    },
  },
  {
    method: 'GET',
    path: '/backtests',
    tag: 'backtests',
    summary: 'Every backtest still kept, newest first, with its headline metrics',
    optional: 'backtests',
    responses: { 200: json('The backtests', backtestListSchema) },
  },
  {
    method: 'GET',
    path: '/backtests/:id',
    tag: 'backtests',
    summary: "A backtest's progress, then its report: metrics, equity curve, per symbol, trades; a sweep's combinations",
    params: backtestIdParams,
    optional: 'backtests',
    responses: { 200: json('The backtest', backtestJobSchema), 404: json('No backtest with that id', errorSchema) },
  },
  {
    method: 'GET',
    path: '/events',
    tag: 'dashboard',
    summary: 'Server-Sent Events: bar, order, fill, feed_switch, actor, collector',
    description:
      'Each event has an id; reconnect with the `Last-Event-ID` header (or `last_event_id`) to get what was missed from the newest 5000. ' +
      'A `reset` event means that cannot be done (server restarted, or too old): reload state. A `dropped` event means the client read too slowly and ' +
      'that many events were skipped for it. Each `data` is JSON with `type`, `actor` and `at` (ISO time) besides the fields of its type.',
    query: eventsQuery,
    responses: { 200: { description: 'An event stream (text/event-stream) that stays open', schema: z.string(), mediaType: 'text/event-stream' } },
  },
  {
    method: 'GET',
    path: '/dashboard/bars',
    tag: 'dashboard',
    summary: "The page's charts in one request: the newest bars of every symbol shown, in columns",
    description:
      "The symbols are those the loop trades and the collector collects, at the loop's bar size (else the collector's). Columns of plain numbers " +
      "(`t` in epoch seconds) rather than one object per bar: the dashboard's first load asks for this once, from its <head>.",
    query: dashboardBarsQuery,
    responses: { 200: json('Bars per symbol, in columns', dashboardBarsSchema) },
  },
  {
    method: 'GET',
    path: '/feed/switches',
    tag: 'dashboard',
    summary: "The feed ladder's switches per symbol since the server started (the timeline before the page was opened)",
    description:
      'Every feed_switch event is kept per symbol (the newest `per_symbol_limit`), apart from the /events replay ring, so a page opened late still draws ' +
      'which rung served when. Each entry carries the id of its event on /events, so a client that also listens there can skip the ones it has.',
    query: feedSwitchesQuery,
    responses: { 200: json('The switches, oldest first per symbol', feedSwitchesSchema) },
  },
  {
    method: 'GET',
    path: '/dashboard/info',
    tag: 'dashboard',
    summary: 'What the dashboard needs to know: whether a token is needed, for POSTs and for reads',
    responses: { 200: json('Auth requirements and event types', dashboardInfoSchema) },
  },
  {
    method: 'GET',
    path: '/openapi.json',
    tag: 'dashboard',
    summary: 'This document',
    responses: { 200: json('The OpenAPI 3.1 description of this API', z.record(z.string(), z.unknown())) },
  },
];

/** Routes that serve the dashboard's page and assets; not part of the API. */
export const UNDOCUMENTED_PREFIXES = ['/ui/', '/docs'];
export const UNDOCUMENTED_ROUTES = ['GET /', 'HEAD /'];

export interface DocOptions {
  faults: boolean;
  /** The server serves /backtests. */
  backtests?: boolean;
  tokenRequired: boolean;
  readsNeedToken: boolean;
}

/** `/bars/:symbol` -> `/bars/{symbol}`. */
export function openapiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, '{$1}');
}

type Json = Record<string, unknown>;

/** Converts a zod schema, moving its named definitions into `defs` (components/schemas). */
function toSchema(schema: z.ZodType, io: 'input' | 'output', defs: Record<string, unknown>): Json {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  delete out.$schema;
  const local = (out.$defs ?? {}) as Record<string, unknown>;
  delete out.$defs;
  for (const [k, v] of Object.entries(local)) defs[k] = rewriteRefs(v);
  return rewriteRefs(out) as Json;
}

function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    const o: Json = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] = k === '$ref' && typeof x === 'string' ? x.replace(/^#\/\$defs\//, '#/components/schemas/') : rewriteRefs(x);
    }
    return o;
  }
  return v;
}

/** One OpenAPI parameter per property of `schema`; path parameters are always required. */
function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query', defs: Record<string, unknown>): Json[] {
  if (!schema) return [];
  const s = toSchema(schema, 'input', defs) as { properties: Record<string, Json>; required?: string[] };
  return Object.entries(s.properties).map(([name, p]) => {
    const { description, ...rest } = p;
    const required = where === 'path' || (s.required?.includes(name) ?? false);
    return { name, in: where, required, ...(description ? { description } : {}), schema: rest };
  });
}

function errorResponse(description: string, defs: Record<string, unknown>): Json {
  return { description, content: { 'application/json': { schema: toSchema(errorSchema, 'output', defs) } } };
}

export function buildOpenApi(opts: DocOptions, version: string): Json {
  const defs: Record<string, unknown> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    if (r.faultsOnly && !opts.faults) continue;
    if (r.optional === 'backtests' && !opts.backtests) continue;
    const op: Json = {
      operationId: `${r.method.toLowerCase()}${openapiPath(r.path)
        .replace(/[{}]/g, '')
        .replace(/[/.-](\w)/g, (_m, c: string) => c.toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
    };
    if (r.description) op.description = r.description;
    const parameters: Json[] = [...parametersOf(r.params, 'path', defs), ...parametersOf(r.query, 'query', defs)];
    if (r.path === '/events') {
      parameters.push({ name: 'Last-Event-ID', in: 'header', required: false, description: 'Resume after this event id', schema: { type: 'string' } });
    }
    if (parameters.length) op.parameters = parameters;
    if (r.body) {
      op.requestBody = { required: false, content: { 'application/json': { schema: toSchema(r.body, 'input', defs) } } };
    }
    const responses: Json = {};
    for (const [status, doc] of Object.entries(r.responses)) {
      const media = doc.mediaType ?? 'application/json';
      responses[status] = { description: doc.description, ...(doc.schema ? { content: { [media]: { schema: toSchema(doc.schema, 'output', defs) } } } : {}) };
    }
    if (r.body || r.query || r.params) responses['400'] ??= errorResponse('A malformed request; `field` names the part at fault', defs);
    const needsToken = r.method === 'POST' ? opts.tokenRequired : opts.readsNeedToken && r.path !== '/dashboard/info' && r.path !== '/openapi.json';
    if (needsToken) {
      responses['401'] ??= errorResponse('No or a wrong token: send Authorization: Bearer <BARKEEP_API_TOKEN>', defs);
      op.security = [{ bearer: [] }];
    }
    if (r.callsActor) {
      responses['409'] ??= errorResponse('The actor refused the request in its present state', defs);
      responses['503'] ??= errorResponse('The actor is restarting, failed or stopped', defs);
    }
    responses['500'] ??= errorResponse('An unexpected failure', defs);
    op.responses = responses;
    const p = (paths[openapiPath(r.path)] ??= {});
    p[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'barkeep',
      version,
      description:
        'The HTTP API of barkeep, a trading engine for US equities. JSON with snake_case fields; times are ISO-8601 UTC. ' +
        'When BARKEEP_API_TOKEN is set, every POST needs `Authorization: Bearer <token>`; on a non-loopback bind every read does too.',
    },
    servers: [{ url: '/' }],
    tags: [
      { name: 'runtime', description: 'Actors, health, metrics' },
      { name: 'collector', description: 'Bar collection from Massive, Alpaca or the simulated market' },
      { name: 'trading', description: 'The trading loop, orders, positions, kill switch' },
      { name: 'bars', description: 'The LMDB bar cache' },
      { name: 'backtests', description: 'Backtests and sweeps on the live trading code, on a worker pool' },
      { name: 'dashboard', description: 'Live events and the dashboard' },
    ],
    paths,
    components: {
      schemas: defs,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'BARKEEP_API_TOKEN' } },
    },
  };
}
