import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Bar } from '../../src/market/bar.ts';
import { registerBarsRoutes } from '../../src/server/routes/bars.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';

const T0 = Date.UTC(2024, 2, 4, 14, 30);
const MIN = 60_000;
let dir: string;
let storage: Storage;
let app: FastifyInstance;
let base: string;

function bar(m: number, over: Partial<Bar> = {}): Bar {
  return {
    symbol: 'QQQ',
    barSize: '1Min',
    start: T0 + m * MIN,
    open: 430 + m,
    high: 431 + m,
    low: 429 + m,
    close: 430.5 + m,
    volume: 1000 + m,
    vwap: 430.2 + m,
    trades: 10 + m,
    source: 'massive',
    receivedAt: T0 + (m + 1) * MIN,
    ...over,
  };
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-route-'));
  storage = openStorage({ path: dir });
  await storage.bars.putMany(Array.from({ length: 150 }, (_, m) => bar(m, m === 149 ? { vwap: NaN, trades: -1, source: 'alpaca' } : {})));
  app = Fastify();
  registerBarsRoutes(app, { bars: storage.bars });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
after(async () => {
  await app.close();
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function get(url: string) {
  const res = await fetch(base + url);
  return { status: res.status, body: (await res.json()) as any };
}

test('GET /bars/{symbol} returns the newest 100 bars by default, oldest first, with their source', async () => {
  const { status, body } = await get('/bars/QQQ');
  assert.equal(status, 200);
  assert.equal(body.symbol, 'QQQ');
  assert.equal(body.bar_size, '1Min');
  assert.equal(body.bars.length, 100);
  assert.equal(body.bars[0].t, new Date(T0 + 50 * MIN).toISOString());
  assert.deepEqual(body.bars[98], { t: new Date(T0 + 148 * MIN).toISOString(), o: 578, h: 579, l: 577, c: 578.5, v: 1148, vw: 578.2, n: 158, source: 'massive' });
  assert.deepEqual(body.bars[99], { t: new Date(T0 + 149 * MIN).toISOString(), o: 579, h: 580, l: 578, c: 579.5, v: 1149, vw: null, n: null, source: 'alpaca' });
});

test('GET /bars/{symbol} honours limit, from and to (ISO or epoch ms)', async () => {
  const limited = await get('/bars/QQQ?bar_size=1Min&limit=3');
  assert.deepEqual(
    limited.body.bars.map((b: { o: number }) => b.o),
    [577, 578, 579],
  );
  const from = await get(`/bars/QQQ?from=${new Date(T0 + 10 * MIN).toISOString()}&limit=2`);
  assert.deepEqual(
    from.body.bars.map((b: { o: number }) => b.o),
    [440, 441],
  );
  const range = await get(`/bars/QQQ?from=${T0 + 10 * MIN}&to=${T0 + 12 * MIN}`);
  assert.deepEqual(
    range.body.bars.map((b: { o: number }) => b.o),
    [440, 441, 442],
  );
  const ny = await get('/bars/QQQ?from=2024-03-04T09:31&to=2024-03-04T09:31');
  assert.deepEqual(
    ny.body.bars.map((b: { o: number }) => b.o),
    [431],
  );
  const to = await get(`/bars/QQQ?to=${T0 + 5 * MIN}&limit=2`);
  assert.deepEqual(
    to.body.bars.map((b: { o: number }) => b.o),
    [434, 435],
  );
});

test('GET /bars/{symbol} for a symbol or size with no bars returns an empty list', async () => {
  assert.deepEqual((await get('/bars/SPY')).body, { symbol: 'SPY', bar_size: '1Min', bars: [] });
  assert.deepEqual((await get('/bars/qqq?bar_size=1Day')).body, { symbol: 'QQQ', bar_size: '1Day', bars: [] });
});

test('GET /bars/{symbol} refuses a bad symbol or parameter with a 400 naming it', async () => {
  const cases: [string, string][] = [
    ['/bars/Q%20Q', 'symbol'],
    ['/bars/QQQ?bar_size=2Min', 'bar_size'],
    ['/bars/QQQ?limit=0', 'limit'],
    ['/bars/QQQ?limit=10001', 'limit'],
    ['/bars/QQQ?limit=abc', 'limit'],
    ['/bars/QQQ?limit=5&limit=6', 'limit'],
    ['/bars/QQQ?from=yesterday', 'from'],
    ['/bars/QQQ?to=2024-13-45', 'to'],
    [`/bars/QQQ?from=${T0 + MIN}&to=${T0}`, 'from'],
  ];
  for (const [url, field] of cases) {
    const { status, body } = await get(url);
    assert.equal(status, 400, url);
    assert.equal(body.error, 'bad_request', url);
    assert.equal(body.field, field, url);
    assert.match(body.message, new RegExp(`^${field}: `), url);
  }
});
