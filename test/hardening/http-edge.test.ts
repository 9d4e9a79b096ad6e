/**
 * Regressions from the hostile campaign (issue 12) at the HTTP edge, against `barkeep serve` as a
 * child process on a free port: every refusal is a 4xx in barkeep's `{ error, field, message }`
 * shape, never a 5xx, whatever the body, path or header.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Served, serve } from '../helpers/serve.ts';

const TOKEN = 'tok-0123456789';
let app: Served;

before(async () => {
  app = await serve({
    env: { BARKEEP_API_TOKEN: TOKEN, BARKEEP_FAULTS: '1' },
    yaml: 'server:\n  request_timeout_ms: 1500\ncollector:\n  autostart: false\ntrader:\n  autostart: false\n',
    timeoutMs: 120_000,
  });
});
after(async () => {
  await app?.[Symbol.asyncDispose]();
});

/** A raw request, so bodies and paths are sent exactly as given. */
async function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  const res = await fetch(app.url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

function assertShape(r: { status: number; json: any; text: string }, status: number, field?: string): void {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json, `a JSON body: ${r.text}`);
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'field', 'message'], r.text);
  assert.match(r.json.error, /^[a-z_]+$/);
  if (field !== undefined) assert.equal(r.json.field, field, r.text);
  else assert.equal(typeof r.json.field, 'string');
}

describe('a deeply nested body is a 503', () => {
  test('strategy_params nested 10,000 levels is a 400 naming the field, not a 5xx', async () => {
    const nested = `{"strategy":"sma-crossover","strategy_params":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    const r = await raw('POST', '/live/start', nested);
    assertShape(r, 400);
    assert.match(r.json.field, /^strategy_params(\.a)+$/);
    assert.match(r.json.message, /nested deeper than \d+ levels/);
  });
  test('strategy_params with too many keys, and a body over the route limit, are refused with their field', async () => {
    const wide = JSON.stringify({ strategy: 'sma-crossover', strategy_params: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i])) });
    assertShape(await raw('POST', '/live/start', wide), 400, 'strategy_params');
    const big = JSON.stringify({ flatten: false, pad: 'x'.repeat(100_000) });
    assertShape(await raw('POST', '/live/kill', big), 413, 'body');
  });
});

describe('the auth scheme is case-sensitive', () => {
  test('"bearer", "BEARER" and extra spaces are accepted as RFC 6750 allows; everything else is refused', async () => {
    for (const scheme of ['bearer', 'BEARER', 'Bearer', 'bEaReR']) {
      const r = await raw('POST', '/data-collector/stop', undefined, { authorization: `${scheme} ${TOKEN}` });
      assert.equal(r.status, 200, `${scheme}: ${r.text}`);
    }
    const refused: Array<[string, Record<string, string>]> = [
      ['/data-collector/stop', { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }],
      ['/data-collector/stop', { authorization: TOKEN }],
      ['/data-collector/stop', { authorization: `Bearer ${TOKEN}x` }],
      ['/data-collector/stop', { authorization: `Bearer${TOKEN}` }],
      ['/data-collector/stop', { authorization: '', 'x-api-key': TOKEN }],
      ['/data-collector/stop', { authorization: '', cookie: `token=${TOKEN}` }],
      [`/data-collector/stop?token=${TOKEN}`, { authorization: '' }],
      [`/data-collector/stop?access_token=${TOKEN}`, { authorization: '' }],
    ];
    for (const [path, headers] of refused) assertShape(await raw('POST', path, undefined, headers), 401, 'authorization');
  });
});

describe('names from input looked up on prototypes', () => {
  test('"constructor", "toString" and "__proto__" are unknown strategies, refused with the known ones listed', async () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const r = await raw('POST', '/live/start', JSON.stringify({ strategy: name }));
      assertShape(r, 400, 'strategy');
      assert.match(r.json.message, /sma-crossover, mean-reversion/);
    }
    const s = await app.get('/live/status');
    assert.equal(s.body.is_running, false, 'nothing reports running');
  });
});

describe('one error shape', () => {
  test("fastify's own errors, 404s, 414s and bad JSON all answer { error, field, message } with a stable code", async () => {
    const bad = await raw('GET', '/bars/%E0%A4%A');
    assertShape(bad, 400, 'path');
    assert.equal(bad.json.error, 'bad_url');
    const long = await raw('GET', `/bars/${'A'.repeat(5000)}`);
    assertShape(long, 414, 'path');
    assert.ok(long.text.length < 300, 'the answer does not echo the URL');
    const missing = await raw('GET', `/nowhere/${'x'.repeat(5000)}`);
    assertShape(missing, 404, 'path');
    assert.ok(missing.text.length < 300, 'the 404 does not echo the URL');
    const json = await raw('POST', '/live/kill', '{"flatten": tru');
    assertShape(json, 400, 'body');
    assert.equal(json.json.error, 'bad_json');
    const media = await raw('POST', '/live/kill', '<flatten/>', { 'content-type': 'application/xml' });
    assertShape(media, 415, 'content-type');
    assertShape(await raw('POST', '/live/kill', '{"flatten": 1}'), 400, 'flatten');
    assertShape(await raw('POST', '/actors/nobody/restart'), 404, 'name');
    assertShape(await raw('POST', '/actors/trader/restart'), 409, 'name');
  });
});

describe('slow peers hold barkeep', () => {
  test('a client that declares a 1 kB body and sends 11 bytes of it is answered 408 and closed at the request timeout', async () => {
    const { port } = new URL(app.url);
    const sock = connect(Number(port), '127.0.0.1');
    let received = '';
    sock.on('data', (d) => (received += d));
    sock.write(`POST /live/kill HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"flatten":`);
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 8_000);
      sock.on('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    sock.destroy();
    assert.ok(closed, 'the server closed the socket');
    assert.match(received, /^HTTP\/1\.1 408/);
    assert.match(received, /"error":"request_timeout"/);
  });
});
