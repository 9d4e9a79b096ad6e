import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serve, runCli, until } from '../helpers/serve.ts';

test('a fresh start runs collector, arbiter and trader in three threads on the simulated market', async () => {
  await using app = await serve({ env: { BARKEEP_FAULTS: '1' } });
  const { body } = await app.get('/actors');
  assert.deepEqual(
    body.actors.map((a: any) => a.name),
    ['collector', 'arbiter', 'trader'],
  );
  assert.ok(body.actors.every((a: any) => a.state === 'running'));
  assert.equal(new Set(body.actors.map((a: any) => a.thread_id)).size, 3);
  const status = await until(async () => {
    const s = (await app.get('/data-collector/status')).body;
    // Symbols are recorded as each is collected: wait for both, not the first.
    return Object.keys(s.last_collection_times ?? {}).length >= 2 && s;
  }, 'the first collection of both symbols');
  assert.equal(status.api_type, 'Simulated');
  assert.equal(status.is_running, true);
  assert.deepEqual(Object.keys(status.last_collection_times).sort(), ['QQQ', 'SPY']);
  const health = await app.get('/health');
  assert.equal(health.status, 200);
  const metrics = await app.get('/metrics');
  assert.match(metrics.body, /barkeep_actor_restarts_total\{actor="arbiter"\} 0/);
  assert.match(metrics.body, /barkeep_actor_event_loop_lag_seconds/);
});

test('a crash drill on the arbiter is followed by the arbiter running again with one restart', async () => {
  await using app = await serve({ env: { BARKEEP_FAULTS: '1' } });
  const before = (await app.get('/actors')).body.actors.find((a: any) => a.name === 'arbiter');
  const crash = await app.post('/actors/arbiter/crash');
  assert.equal(crash.status, 202);
  const after = await until(
    async () => {
      const a = (await app.get('/actors')).body.actors.find((x: any) => x.name === 'arbiter');
      return a.state === 'running' && a.restarts === 1 && a;
    },
    'the arbiter to run again',
    5_000,
  );
  assert.notEqual(after.thread_id, before.thread_id);
  assert.match(after.last_error, /drill/);
  assert.equal((await app.get('/health')).status, 200);
});

test('without BARKEEP_FAULTS the crash route does not exist', async () => {
  await using app = await serve();
  assert.equal((await app.post('/actors/arbiter/crash')).status, 404);
});

test('SIGTERM stops the actors in order and exits 0 within 10 s', async () => {
  const app = await serve();
  const { code, ms } = await app.stop('SIGTERM');
  assert.equal(code, 0);
  assert.ok(ms < 10_000, `took ${ms} ms`);
  assert.ok(app.lines.some((l) => l.includes('"msg":"stopped"')));
  await app[Symbol.asyncDispose]();
});

test('with BARKEEP_API_TOKEN set, a POST without the token gets 401 and with it succeeds', async () => {
  await using app = await serve({ env: { BARKEEP_API_TOKEN: 'test-token-123' } });
  assert.equal((await app.post('/data-collector/stop')).status, 401);
  assert.equal((await app.post('/data-collector/stop', undefined, { authorization: 'Bearer wrong' })).status, 401);
  const ok = await app.post('/data-collector/stop', undefined, { authorization: 'Bearer test-token-123' });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.is_running, false);
  assert.equal((await app.get('/data-collector/status')).status, 200, 'GETs need no token');
  assert.ok(!app.lines.some((l) => l.includes('test-token-123')), 'the token never appears in the logs');
});

test('a bad config refuses the start with a message naming the key', async () => {
  const r = await runCli(['serve'], { yaml: 'collector:\n  bar_size: 2Min\n' });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /collector\.bar_size/);
  const unknown = await runCli(['serve'], { yaml: 'feed:\n  cache_max_age: 5\n' });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /feed\.cache_max_age: unknown key/);
  const env = await runCli(['serve'], { env: { BARKEEP_PORT: 'eighty' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /server\.port/);
});

test('binding to a non-loopback address without a token refuses to start', async () => {
  const r = await runCli(['serve'], { env: { BARKEEP_HOST: '0.0.0.0' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /server\.api_token.*non-loopback/);
});

test('bad request bodies get a 400 naming the field', async () => {
  await using app = await serve();
  const r1 = await app.post('/data-collector/start', { symbols: ['QQQ', 'not a symbol'], bar_size: '1Min' });
  assert.equal(r1.status, 400);
  assert.equal(r1.body.field, 'symbols.1');
  const r2 = await app.post('/data-collector/start', { symbols: ['QQQ'], bar_size: '7Min' });
  assert.equal(r2.status, 400);
  assert.equal(r2.body.field, 'bar_size');
  const r3 = await app.post('/data-collector/start', '{"symbols": [');
  assert.equal(r3.status, 400);
  assert.equal(r3.body.field, 'body');
  const r4 = await app.post('/data-collector/start', { symbols: ['QQQ'], bar_size: '1Min', extra: 1 });
  assert.equal(r4.status, 400);
  assert.equal(r4.body.field, 'extra');
});
