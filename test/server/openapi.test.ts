/**
 * /openapi.json against a running engine (in this process, real actors and HTTP on 127.0.0.1:0,
 * the simulated market on an accelerated clock, crash drills on): the document is a valid OpenAPI
 * 3.1 description, it describes every route the server registered, and every route it describes
 * answers with a documented status and a body that matches the documented schema.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import { registeredRoutes } from '../../src/server/app.ts';
import { startEngine, type Engine } from '../../src/server/engine.ts';
import { liveStartBody } from '../../src/server/schemas.ts';
import { UNDOCUMENTED_PREFIXES, UNDOCUMENTED_ROUTES, openapiPath } from '../../src/server/openapi.ts';
import { until } from '../helpers/serve.ts';

const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));

let engine: Engine;
let dir: string;
let doc: any;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'barkeep-openapi-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      server: { port: 0 },
      log: { level: 'silent' },
      runtime: { faults: true, clock: 'accelerated', clock_speed: 60, clock_start: '2026-01-05T15:00:00Z' },
      collector: { backfill_days: 1 },
      trader: { strategy: 'module', strategy_module: HOLD, strategy_params: { qty: 10, restingLimit: true } },
    },
  });
  engine = await startEngine(config, { log: pino({ level: 'silent' }) });
  doc = await (await fetch(`${engine.url}/openapi.json`)).json();
  // Some orders and positions, so their item schemas are exercised too.
  await until(
    async () => {
      const r = (await (await fetch(`${engine.url}/live/status`)).json()) as { positions: unknown[]; open_orders: unknown[] };
      return r.positions.length > 0 && r.open_orders.length > 0;
    },
    'a position and a resting order',
    30_000,
  );
});

after(async () => {
  await engine?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("the dashboard's one bars request holds, in columns, the same bars /bars gives for every symbol shown", async () => {
  const d = (await (await fetch(`${engine.url}/dashboard/bars?limit=50`)).json()) as any;
  assert.equal(d.bar_size, '1Min');
  assert.deepEqual(d.symbols, ['QQQ', 'SPY']);
  for (const symbol of d.symbols) {
    const cols = d.bars[symbol];
    assert.equal(cols.t.length, 50);
    // From the first bar on: later bars may have been written since, never any in between.
    const bars = ((await (await fetch(`${engine.url}/bars/${symbol}?bar_size=1Min&from=${cols.t[0] * 1000}&limit=50`)).json()) as any).bars;
    assert.deepEqual(
      cols.t,
      bars.map((b: any) => Date.parse(b.t) / 1000),
    );
    for (const k of ['o', 'h', 'l', 'c', 'v'])
      assert.deepEqual(
        cols[k],
        bars.map((b: any) => b[k]),
        `${symbol} ${k}`,
      );
  }
  const bad = await fetch(`${engine.url}/dashboard/bars?limit=0`);
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as any).field, 'limit');
});

test('the document is valid OpenAPI 3.1 by the specification schema', async () => {
  const validator = new Validator();
  const res = await validator.validate(structuredClone(doc));
  assert.equal(res.valid, true, JSON.stringify(res.errors, null, 1)?.slice(0, 2000));
  assert.equal(doc.openapi, '3.1.0');
  assert.match(doc.info.version, /^\d+\.\d+\.\d+/);
});

test('every route the server registered is described, and nothing else is', () => {
  const registered = (registeredRoutes.get(engine.app) ?? [])
    .filter((r) => !r.startsWith('HEAD ') && !UNDOCUMENTED_ROUTES.includes(r))
    .filter((r) => !UNDOCUMENTED_PREFIXES.some((p) => r.split(' ')[1].startsWith(p)));
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`));
  const missing = registered.filter((r) => !documented.includes(`${r.split(' ')[0]} ${openapiPath(r.split(' ')[1])}`));
  assert.deepEqual(missing, [], `undocumented routes (add them to ROUTES in src/server/openapi.ts): ${missing.join(', ')}`);
  assert.equal(documented.length, registered.length, `documented: ${documented.join(', ')}`);
});

test('every operation documents its request, its responses and its errors', () => {
  for (const [path, ops] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(ops)) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.ok(op.summary, `${where}: summary`);
      const ok = Object.keys(op.responses).filter((s) => s.startsWith('2'));
      assert.ok(ok.length > 0, `${where}: a success response`);
      for (const s of Object.keys(op.responses)) {
        const content = op.responses[s].content;
        assert.ok(content && Object.values<any>(content)[0].schema, `${where} ${s}: a response schema`);
      }
      assert.ok(op.responses['500'], `${where}: the 500 error`);
      if (op.requestBody || op.parameters?.some((p: any) => p.in !== 'header')) assert.ok(op.responses['400'], `${where}: the 400 error`);
      for (const p of op.parameters ?? []) assert.ok(p.schema, `${where}: parameter ${p.name} has a schema`);
    }
  }
  // The request schemas are the ones the routes validate with: strict bodies, the bar sizes named.
  const live = doc.paths['/live/start'].post.requestBody.content['application/json'].schema;
  assert.equal(live.additionalProperties, false);
  assert.deepEqual(Object.keys(live.properties).sort(), Object.keys(liveStartBody.shape).sort());
  assert.ok('symbols' in live.properties && 'strategy' in live.properties);
  const barSize = doc.paths['/bars/{symbol}'].get.parameters.find((p: any) => p.name === 'bar_size');
  assert.deepEqual(barSize.schema.enum, ['1Min', '5Min', '15Min', '30Min', '1Hour', '1Day']);
});

/** A request for each documented operation: sample values for path parameters, a valid body. */
const SAMPLE_PARAMS: Record<string, string> = { symbol: 'QQQ', name: 'arbiter' };
const SAMPLE_QUERY: Record<string, string> = { '/bars/{symbol}': '?bar_size=1Min&limit=5', '/events': '?types=bar' };
const SAMPLE_BODY: Record<string, unknown> = {
  '/live/kill': { flatten: false },
  '/data-collector/start': { symbols: ['QQQ', 'SPY'] },
  '/backtests': { symbols: ['QQQ'], from: '2026-01-05T14:00:00Z', to: '2026-01-05T15:00:00Z' },
};
/** Order matters: stop before start, kill before resume, a backtest before reading it, the crash drill last. */
const ORDER = ['/backtests', '/backtests/{id}', '/data-collector/stop', '/data-collector/start', '/live/stop', '/live/start', '/live/kill', '/live/resume', '/actors/{name}/crash'];

test('every documented operation answers with a documented status and a body matching its schema', async () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = (schema: unknown, body: unknown) => {
    const fn = ajv.compile({ ...(schema as object), components: doc.components });
    return fn(body) ? null : ajv.errorsText(fn.errors);
  };
  const ops = Object.entries<any>(doc.paths).flatMap(([path, o]) => Object.entries<any>(o).map(([method, op]) => ({ path, method, op })));
  ops.sort((a, b) => ORDER.indexOf(a.path) - ORDER.indexOf(b.path));
  const seen: string[] = [];
  let lastBody = '';
  for (const { path, method, op } of ops) {
    const url = path.replace(/\{(\w+)\}/g, (_m, k: string) => SAMPLE_PARAMS[k]) + (SAMPLE_QUERY[path] ?? '');
    const where = `${method.toUpperCase()} ${url}`;
    const ctl = new AbortController();
    const res = await fetch(engine.url + url, {
      method: method.toUpperCase(),
      signal: ctl.signal,
      ...(method === 'post' ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(SAMPLE_BODY[path] ?? {}) } : {}),
    });
    const documented = op.responses[String(res.status)];
    assert.ok(documented, `${where} answered ${res.status}, which is not documented`);
    const [mediaType, media] = Object.entries<any>(documented.content)[0];
    assert.equal(res.headers.get('content-type')?.split(';')[0], mediaType, `${where}: content type`);
    if (mediaType === 'text/event-stream') {
      // A stream stays open: read its first chunk, then hang up.
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      assert.match(first, /^retry: \d+/);
      ctl.abort();
    } else if (mediaType === 'application/json') {
      lastBody = await res.text();
      const body = JSON.parse(lastBody);
      const problem = validate(media.schema, body);
      assert.equal(problem, null, `${where} ${res.status}: ${problem}\n${JSON.stringify(body).slice(0, 500)}`);
    } else {
      assert.equal(typeof (await res.text()), 'string');
    }
    seen.push(`${where} ${res.status}`);
    if (path === '/backtests' && method === 'post') SAMPLE_PARAMS.id = (JSON.parse(lastBody) as { id: string }).id;
  }
  assert.ok(
    seen.some((s) => s.startsWith('POST /actors/arbiter/crash 202')),
    seen.join('\n'),
  );
  assert.ok(
    seen.some((s) => s.startsWith('POST /backtests 202')),
    seen.join('\n'),
  );
  // The finished backtest's report matches its schema too (metrics, equity curve, trades).
  const schema = doc.paths['/backtests/{id}'].get.responses['200'].content['application/json'].schema;
  const done = await until(
    async () => {
      const r = (await (await fetch(`${engine.url}/backtests/${SAMPLE_PARAMS.id}`)).json()) as { state: string };
      return r.state !== 'running' && r;
    },
    'the backtest to finish',
    60_000,
  );
  assert.equal((done as { state: string }).state, 'done', JSON.stringify(done).slice(0, 500));
  assert.equal(validate(schema, done), null);
  assert.ok((done as any).report.equity_curve.length > 0);
  await engine.supervisor.whenRunning('arbiter');
});

test('bad requests get the documented 400 with the field named', async () => {
  const ajv = new Ajv2020({ strict: false });
  const errorSchema = ajv.compile({ ...doc.components.schemas.Error, components: doc.components });
  const cases: Array<[string, string, unknown, string]> = [
    ['POST', '/live/start', { symbols: ['QQQ', 'not a symbol'] }, 'symbols.1'],
    ['POST', '/live/start', { bogus: 1 }, 'bogus'],
    ['POST', '/live/kill', { flatten: 'yes' }, 'flatten'],
    ['POST', '/data-collector/start', { bar_size: '2Min' }, 'bar_size'],
    ['GET', '/bars/QQQ?limit=0', undefined, 'limit'],
    ['GET', '/events?types=bar,nope', undefined, 'types'],
    ['GET', '/feed/switches?symbol=not%20a%20symbol', undefined, 'symbol'],
    ['GET', '/feed/switches?bogus=1', undefined, 'bogus'],
    ['GET', '/dashboard/bars?limit=abc', undefined, 'limit'],
    ['GET', '/dashboard/bars?limit=10001', undefined, 'limit'],
  ];
  for (const [method, path, body, field] of cases) {
    const res = await fetch(engine.url + path, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as { field?: string };
    assert.equal(res.status, 400, `${method} ${path}`);
    assert.ok(errorSchema(json), `${method} ${path}: ${JSON.stringify(json)}`);
    assert.equal(json.field, field, `${method} ${path}: ${JSON.stringify(json)}`);
    const op = doc.paths[openapiPath(path.split('?')[0]).replace('/QQQ', '/{symbol}')][method.toLowerCase()];
    assert.ok(op.responses['400'], `${method} ${path}: 400 documented`);
  }
});
