/**
 * Alpaca's multi-symbol bars endpoint: one request serves many symbols, `limit` counts them all,
 * and `next_page_token` can cut a symbol's bars across pages. Real HTTP against the fake.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { RealClock } from '../../src/market/clock.ts';
import { parseMultiBarsPage } from '../../src/sources/alpaca/multi-bars.ts';
import { AlpacaSource } from '../../src/sources/alpaca/source.ts';
import { SourceError } from '../../src/sources/types.ts';
import { type FakeAlpaca, startFakeAlpaca } from '../fakes/alpaca/server.ts';

const KEY_ID = 'PKMULTIKEY0001';
const SECRET = 'alpaca-multi-secret-0001';
const T0 = Date.UTC(2026, 2, 4, 14, 30);
const MIN = 60_000;

const fakes: FakeAlpaca[] = [];
const sources: AlpacaSource[] = [];
after(async () => {
  for (const s of sources) await s.close();
  for (const f of fakes) await f.close();
});

function bars(symbol: string, n: number, base: number): Bar[] {
  return Array.from({ length: n }, (_, i) => ({
    symbol,
    barSize: '1Min' as const,
    start: T0 + i * MIN,
    open: base + i,
    high: base + i + 1,
    low: base + i - 1,
    close: base + i + 0.5,
    volume: 100 + i,
    vwap: base + i + 0.1,
    trades: 3 + i,
    source: 'alpaca' as const,
    receivedAt: 0,
  }));
}

const strip = (list: Bar[]) => list.map(({ receivedAt: _r, ...rest }) => rest);

async function rig(pageSize: number) {
  const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], pageSize });
  fakes.push(fake);
  const source = new AlpacaSource({ keyId: KEY_ID, secretKey: SECRET, dataUrl: fake.url, clock: new RealClock() });
  sources.push(source);
  return { fake, source };
}

test('fetchBarsMulti returns every symbol\'s bars exactly, following next_page_token across symbols', async () => {
  const { fake, source } = await rig(7);
  const want = { AAPL: bars('AAPL', 10, 50), MSFT: bars('MSFT', 4, 300), SPY: bars('SPY', 12, 500) };
  for (const [s, list] of Object.entries(want)) fake.setBars(s, list);
  fake.setBars('QQQ', []);
  const got = await source.fetchBarsMulti(['SPY', 'AAPL', 'MSFT', 'QQQ'], '1Min', T0, T0 + 60 * MIN);
  for (const [s, list] of Object.entries(want)) assert.deepEqual(strip(got.get(s)!), strip(list), s);
  assert.deepEqual(got.get('QQQ'), []);
  // 26 bars at 7 per page: 4 requests for four symbols, all on the multi-symbol path.
  assert.equal(fake.multiRequests, 4);
  assert.equal(fake.requests, 4);
  const first = fake.log[0];
  assert.equal(first.path, '/v2/stocks/bars');
  assert.equal(first.query.symbols, 'SPY,AAPL,MSFT,QQQ');
  assert.equal(first.query.feed, 'iex');
  assert.ok(fake.log.slice(1).every((q) => q.query.page_token && q.query.symbols === first.query.symbols));
});

test('fetchBarsMulti keeps from <= t < to (Alpaca\'s end is inclusive)', async () => {
  const { fake, source } = await rig(10_000);
  fake.setBars('AAPL', bars('AAPL', 10, 50));
  const got = await source.fetchBarsMulti(['AAPL'], '1Min', T0 + 2 * MIN, T0 + 5 * MIN);
  assert.deepEqual(
    got.get('AAPL')!.map((b) => b.start),
    [2, 3, 4].map((i) => T0 + i * MIN),
  );
});

test('a multi-symbol envelope whose bars is a list is refused as MALFORMED', () => {
  assert.throws(
    () => parseMultiBarsPage({ bars: [], next_page_token: null }, new Set(['AAPL']), '1Min', 0, Infinity, 0),
    (e: unknown) => e instanceof SourceError && e.code === 'MALFORMED',
  );
});

test('bad bars inside one symbol are skipped and counted, the other symbols kept', () => {
  const page = parseMultiBarsPage(
    {
      bars: {
        AAPL: [{ t: '2026-03-04T14:30:00Z', o: 1, h: 2, l: 0.5, c: 1.5, v: 10 }, { t: 'yesterday', o: 1, h: 2, l: 0.5, c: 1.5, v: 10 }],
        MSFT: [{ t: '2026-03-04T14:30:00Z', o: 3, h: 4, l: 2, c: 3, v: 5, n: 2, vw: 3.1 }],
        IBM: [{ t: '2026-03-04T14:30:00Z', o: 3, h: 4, l: 2, c: 3, v: 5 }],
      },
      next_page_token: null,
    },
    new Set(['AAPL', 'MSFT']),
    '1Min',
    0,
    Infinity,
    0,
  );
  assert.equal(page.malformed, 1);
  assert.match(page.firstProblem ?? '', /bars\.AAPL\[1\]/);
  assert.equal(page.bars.get('AAPL')!.length, 1);
  assert.equal(page.bars.get('AAPL')![0].trades, -1);
  assert.equal(page.bars.get('MSFT')![0].trades, 2);
  assert.equal(page.bars.has('IBM'), false);
  assert.equal(page.nextPageToken, undefined);
});
