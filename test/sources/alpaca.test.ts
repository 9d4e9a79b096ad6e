import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock, RealClock } from '../../src/market/clock.ts';
import { AlpacaSource, type AlpacaSourceOptions } from '../../src/sources/alpaca/source.ts';
import { AlpacaStream, alpacaStreamUrl } from '../../src/sources/alpaca/stream.ts';
import { SourceError } from '../../src/sources/types.ts';
import { type FakeAlpaca, rfc3339, startFakeAlpaca, toAlpacaWire } from '../fakes/alpaca/server.ts';
import { driveClock } from '../fakes/massive/clock-driver.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY_ID = 'PKTESTKEYID00042';
const SECRET = 'sekrit-ALPACA-secret-0042';
const T0 = Date.UTC(2026, 2, 4, 14, 30);
const MIN = 60_000;

function minuteBars(symbol: string, from: number, n: number, step = MIN): Bar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 50 + i;
    return {
      symbol,
      barSize: (step === MIN ? '1Min' : '5Min') as Bar['barSize'],
      start: from + i * step,
      open: o,
      high: o + 1,
      low: o - 1,
      close: o + 0.5,
      volume: 300 + i,
      vwap: o + 0.2,
      trades: 5 + i,
      source: 'alpaca' as const,
      receivedAt: 0,
    };
  });
}

function strip(bars: Bar[]): Array<Omit<Bar, 'receivedAt'>> {
  return bars.map(({ receivedAt: _r, ...rest }) => rest);
}

const fakes: FakeAlpaca[] = [];
const sources: AlpacaSource[] = [];
after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await Promise.all(fakes.map((f) => f.close()));
});

async function setup(fakeOpts: Parameters<typeof startFakeAlpaca>[0] = {}, srcOpts: Partial<AlpacaSourceOptions> = {}): Promise<{ fake: FakeAlpaca; source: AlpacaSource; clock: ManualClock }> {
  const clock = new ManualClock(T0 + 600 * MIN);
  const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], clock, ...fakeOpts });
  fakes.push(fake);
  const source = new AlpacaSource({ keyId: KEY_ID, secretKey: SECRET, dataUrl: fake.url, clock, ...srcOpts });
  sources.push(source);
  return { fake, source, clock };
}

async function rejection(p: Promise<unknown>): Promise<SourceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SourceError, `expected a SourceError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the fetch to fail');
}

describe('AlpacaSource', () => {
  test('follows page_token to the end and returns exactly the bars served inside [from, to)', async () => {
    const { fake, source, clock } = await setup({ pageSize: 4 });
    const all = minuteBars('AAPL', T0 - 3 * MIN, 30);
    fake.setBars('AAPL', all);
    const from = T0;
    const to = T0 + 20 * MIN;
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', from, to));
    assert.deepEqual(strip(bars), strip(all.filter((b) => b.start >= from && b.start < to)));
    assert.equal(bars.length, 20);
    assert.equal(fake.requests, 5);
    const [first, ...rest] = fake.log;
    assert.equal(first.path, '/v2/stocks/AAPL/bars');
    assert.deepEqual(first.query, {
      timeframe: '1Min',
      start: new Date(from).toISOString(),
      end: new Date(to - 1).toISOString(),
      limit: '10000',
      feed: 'iex',
      adjustment: 'raw',
      sort: 'asc',
    });
    for (const r of rest) {
      assert.ok(r.query.page_token);
      const { page_token: _t, ...others } = r.query;
      assert.deepEqual(others, { ...first.query }, 'every page repeats the same parameters');
    }
  });

  test('always sends the configured feed, and the key only in headers', async () => {
    const { fake, source, clock } = await setup({ pageSize: 2 }, { feed: 'sip' });
    fake.setBars('MSFT', minuteBars('MSFT', T0, 5));
    await driveClock(clock, [fake], source.fetchBars('MSFT', '1Min', T0, T0 + 5 * MIN));
    assert.equal(fake.requests, 3);
    for (const r of fake.log) {
      assert.equal(r.query.feed, 'sip');
      assert.equal(r.auth, KEY_ID);
      assert.ok(!JSON.stringify(r.query).includes(SECRET) && !JSON.stringify(r.query).includes(KEY_ID));
    }
  });

  test('reads bars null as no data', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('AAPL', []);
    assert.deepEqual(await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN)), []);
    assert.equal(fake.requests, 1);
  });

  test('pauses when X-RateLimit-Remaining hits 0 until X-RateLimit-Reset, and so never sees a 429', async () => {
    // The client thinks 200 a minute is fine; the vendor's headers say 3.
    const { fake, source, clock } = await setup({ pageSize: 1, rateLimit: { limit: 3 } });
    fake.setBars('AAPL', minuteBars('AAPL', T0, 8));
    const started = clock.now();
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 8 * MIN));
    assert.equal(bars.length, 8);
    assert.equal(fake.requests, 8);
    assert.ok(
      fake.log.every((r) => r.status === 200),
      'no request was refused',
    );
    assert.equal(fake.maxInWindow, 3);
    assert.ok(clock.now() - started >= 2 * MIN);
    assert.equal(source.lastRateLimit?.limit, 3);
  });

  test('keeps to its own limit without any help from the headers', async () => {
    const { fake, source, clock } = await setup({ pageSize: 1, rateLimit: { limit: 1000 } }, { rateLimitPerMin: 4 });
    fake.setBars('AAPL', minuteBars('AAPL', T0, 10));
    await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 10 * MIN));
    assert.equal(fake.requests, 10);
    assert.equal(fake.maxInWindow, 4);
  });

  test('recovers from 429 by waiting for the reset', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('AAPL', minuteBars('AAPL', T0, 3));
    fake.failNext(1, 429);
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 3 * MIN));
    assert.equal(bars.length, 3);
    assert.equal(fake.requests, 2);
    assert.equal(source.stats().rateLimited, 1);
    assert.ok(fake.log[1].at - fake.log[0].at >= 59_000, 'waited for the window, not just the backoff');
  });

  test('reports 403 as FORBIDDEN naming credentials or plan, with the vendor message, without retrying', async () => {
    const { fake, source, clock } = await setup({ validKeys: [{ keyId: 'other', secret: 'x' }] });
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'FORBIDDEN');
    assert.equal(err.status, 403);
    assert.equal(err.vendorMessage, 'forbidden.');
    assert.match(err.message, /credentials or plan \(feed\) not permitted/);
    assert.ok(!err.message.includes(SECRET) && !err.message.includes(KEY_ID));
    assert.equal(fake.requests, 1);
  });

  test('reports a feed the plan lacks as FORBIDDEN with the vendor text', async () => {
    const { fake, source, clock } = await setup({ forbiddenFeeds: ['sip'] }, { feed: 'sip' });
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'FORBIDDEN');
    assert.match(err.vendorMessage ?? '', /subscription does not permit/);
  });

  test('reports 422 as BAD_REQUEST without retrying', async () => {
    const { fake, source, clock } = await setup();
    fake.failNext(1, 422, { code: 42210000, message: 'invalid timeframe' });
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'BAD_REQUEST');
    assert.equal(err.vendorMessage, 'invalid timeframe');
    assert.equal(fake.requests, 1);
  });

  test('retries 500 and a dropped connection, then succeeds', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('AAPL', minuteBars('AAPL', T0, 2));
    fake.failNext(1, 500);
    fake.dropNext(1);
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 2 * MIN));
    assert.equal(bars.length, 2);
    assert.equal(fake.requests, 3);
    assert.equal(source.stats().retries, 2);
  });

  test('reports UNAVAILABLE once an outage outlasts the retries', async () => {
    const { fake, source, clock } = await setup({}, { maxRetries: 3 });
    fake.failNext(20, 503);
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(fake.requests, 4);
  });

  test('reports a body that is not JSON as MALFORMED after one retry and works on the next call', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('AAPL', minuteBars('AAPL', T0, 2));
    fake.malformedNext(2);
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 2 * MIN)));
    assert.equal(err.code, 'MALFORMED');
    assert.equal(fake.requests, 2);
    assert.equal((await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 2 * MIN))).length, 2);
  });

  test('skips and counts malformed bars inside a good page', async () => {
    const { fake, source, clock } = await setup();
    const good = minuteBars('AAPL', T0, 3);
    fake.setWireBars('AAPL', '1Min', [
      toAlpacaWire(good[0]),
      { ...toAlpacaWire(good[1]), t: 'yesterday' },
      { ...toAlpacaWire(good[1]), c: null },
      toAlpacaWire(good[1]),
      { ...toAlpacaWire(good[2]), v: -5 },
      toAlpacaWire(good[2]),
    ]);
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + 3 * MIN));
    assert.deepEqual(strip(bars), strip(good));
    assert.equal(source.stats().malformed, 3);
  });

  test('reads RFC-3339 times with offsets and fractions', async () => {
    const { fake, source, clock } = await setup();
    const [bar] = minuteBars('AAPL', T0, 1);
    fake.setWireBars('AAPL', '1Min', [{ ...toAlpacaWire(bar), t: '2026-03-04T09:30:00.000000000-05:00' }]);
    const bars = await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', T0, T0 + MIN));
    assert.equal(rfc3339(T0), '2026-03-04T14:30:00Z');
    assert.equal(bars[0]?.start, T0);
  });

  test('reports a response that never comes as TIMEOUT', async () => {
    const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }] });
    fakes.push(fake);
    const source = new AlpacaSource({
      keyId: KEY_ID,
      secretKey: SECRET,
      dataUrl: fake.url,
      clock: new RealClock(),
      timeoutMs: 150,
      maxRetries: 0,
    });
    sources.push(source);
    fake.slowNext(1, 3000);
    const err = await rejection(source.fetchBars('AAPL', '1Min', T0, T0 + MIN));
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(fake.requests, 1);
  });

  test('refuses a feed that does not exist at construction', () => {
    assert.throws(
      () => new AlpacaSource({ keyId: 'a', secretKey: 'b', clock: new RealClock(), feed: 'nasdaq' as never }),
      (e: unknown) => e instanceof SourceError && e.code === 'BAD_REQUEST' && /feed/.test(e.message),
    );
  });
});

describe('AlpacaSource with delayed_sip', () => {
  test('asks sip for history that ends 16 minutes before now', async () => {
    const { fake, source, clock } = await setup({}, { feed: 'delayed_sip' });
    const now = clock.now();
    await driveClock(clock, [fake], source.fetchBars('AAPL', '1Min', now - 60 * MIN, now));
    assert.equal(fake.log[0].query.feed, 'sip');
    assert.equal(Date.parse(fake.log[0].query.end), now - 16 * MIN - 1);
  });
});

describe('AlpacaStream', () => {
  async function streamSetup(secret = SECRET) {
    const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }] });
    fakes.push(fake);
    const stream = new AlpacaStream({
      keyId: KEY_ID,
      secretKey: secret,
      feed: 'iex',
      url: alpacaStreamUrl(fake.url, 'iex'),
      clock: new RealClock(),
      backoffMs: 20,
    });
    return { fake, stream };
  }

  test('authenticates on /v2/{feed}, subscribes bars and emits b and u messages as bars', async () => {
    const { fake, stream } = await streamSetup();
    try {
      await stream.connect();
      stream.subscribe(['AAPL']);
      await waitFor(() => fake.stream.feeds()[0] === 'iex' && fake.stream.authenticated === 1, 'authenticated on the iex feed');
      const bars: Bar[] = [];
      stream.on('bar', (b) => bars.push(b));
      const [bar] = minuteBars('AAPL', T0, 1);
      await waitFor(() => fake.stream.pushMinuteBar('AAPL', bar) === 1, 'a bar pushed to one subscriber');
      fake.stream.pushMinuteBar('AAPL', { ...bar, close: bar.close - 0.25 }, 'u');
      await waitFor(() => bars.length === 2, 'two bars');
      assert.deepEqual(strip([bars[0]]), strip([{ ...bar, source: 'alpaca' }]));
      assert.equal(bars[1].start, T0);
      assert.equal(bars[1].close, bar.close - 0.25);
    } finally {
      await stream.close();
    }
  });

  test('rejects connect() with AUTH on a bad secret and does not reconnect', async () => {
    const { fake, stream } = await streamSetup('wrong');
    try {
      const err = await rejection(stream.connect());
      assert.equal(err.code, 'AUTH');
      assert.equal(err.vendorMessage, 'auth failed');
      assert.ok(!err.message.includes('wrong') && !err.message.includes(KEY_ID));
      assert.equal(fake.stream.authAttempts, 1);
    } finally {
      await stream.close();
    }
  });

  test('reconnects after a drop and resubscribes', async () => {
    const { fake, stream } = await streamSetup();
    try {
      stream.subscribe(['AAPL']);
      await stream.connect();
      fake.stream.dropAll();
      await waitFor(() => fake.stream.authAttempts === 2 && stream.state === 'live', 'live after the second login');
      const got = once(stream, 'bar');
      const [bar] = minuteBars('AAPL', T0, 1);
      await waitFor(() => fake.stream.pushMinuteBar('AAPL', bar) === 1, 'a bar pushed to one subscriber');
      const [b] = (await got) as [Bar];
      assert.equal(b.symbol, 'AAPL');
      assert.equal(stream.counters.reconnects, 1);
    } finally {
      await stream.close();
    }
  });
});
