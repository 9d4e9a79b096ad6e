import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock, RealClock } from '../../src/market/clock.ts';
import { MassiveSource, type MassiveSourceOptions } from '../../src/sources/massive/source.ts';
import { MassiveStream, massiveStreamUrl } from '../../src/sources/massive/stream.ts';
import { SourceError } from '../../src/sources/types.ts';
import { driveClock } from '../fakes/massive/clock-driver.ts';
import { type FakeMassive, startFakeMassive, toMassiveWire } from '../fakes/massive/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = 'sekrit-MASSIVE-key-0042';
const T0 = Date.UTC(2026, 2, 4, 14, 30); // a Wednesday, 09:30 New York
const MIN = 60_000;

function minuteBars(symbol: string, from: number, n: number): Bar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 100 + i;
    return {
      symbol,
      barSize: '1Min' as const,
      start: from + i * MIN,
      open: o,
      high: o + 1,
      low: o - 1,
      close: o + 0.5,
      volume: 1000 + i,
      vwap: o + 0.25,
      trades: 10 + i,
      source: 'massive' as const,
      receivedAt: 0,
    };
  });
}

/** The bar as the source should return it (receivedAt aside). */
function strip(bars: Bar[]): Array<Omit<Bar, 'receivedAt'>> {
  return bars.map(({ receivedAt: _r, ...rest }) => rest);
}

const fakes: FakeMassive[] = [];
const sources: MassiveSource[] = [];
after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await Promise.all(fakes.map((f) => f.close()));
});

async function setup(fakeOpts: Parameters<typeof startFakeMassive>[0] = {}, srcOpts: Partial<MassiveSourceOptions> = {}): Promise<{ fake: FakeMassive; source: MassiveSource; clock: ManualClock }> {
  const clock = new ManualClock(T0 + 600 * MIN);
  const fake = await startFakeMassive({ validKeys: [KEY], clock, ...fakeOpts });
  fakes.push(fake);
  const source = new MassiveSource({
    apiKey: KEY,
    restUrl: fake.url,
    rateLimitPerMin: 1000,
    clock,
    backoffMs: 1000,
    ...srcOpts,
  });
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

describe('MassiveSource', () => {
  test('follows next_url to the end and returns exactly the bars served inside [from, to)', async () => {
    const { fake, source, clock } = await setup({ pageSize: 7 });
    const all = minuteBars('QQQ', T0 - 5 * MIN, 60); // 5 bars before `from`, 5 from `to` on
    fake.setBars('QQQ', all);
    const from = T0;
    const to = T0 + 50 * MIN;
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', from, to));
    assert.deepEqual(strip(bars), strip(all.filter((b) => b.start >= from && b.start < to)));
    assert.equal(bars.length, 50);
    assert.equal(bars[0].start, from, 'the bar at `from` is included');
    assert.equal(bars.at(-1)!.start, to - MIN, 'the bar at `to` is not');
    assert.ok(bars.every((b) => b.receivedAt === clock.now() || b.receivedAt <= clock.now()));
    // 50 bars with the `to` bar excluded by the request itself (to - 1): 50 / 7 pages.
    assert.equal(fake.requests, Math.ceil(50 / 7));
    const [first, ...rest] = fake.log;
    assert.equal(first.path, `/v2/aggs/ticker/QQQ/range/1/minute/${from}/${to - 1}`);
    assert.deepEqual(first.query, { adjusted: 'true', sort: 'asc', limit: '50000' });
    for (const page of rest) assert.ok(page.query.cursor, 'later pages come from next_url');
    assert.equal(source.stats().requests, fake.requests);
  });

  test('sends the key only as a Bearer header, never in a URL', async () => {
    const { fake, source, clock } = await setup({ pageSize: 3 });
    fake.setBars('SPY', minuteBars('SPY', T0, 10));
    await driveClock(clock, [fake], source.fetchBars('SPY', '1Min', T0, T0 + 10 * MIN));
    assert.ok(fake.log.length >= 4);
    for (const r of fake.log) {
      assert.equal(r.auth, `Bearer ${KEY}`);
      assert.ok(!JSON.stringify(r.query).includes(KEY));
      assert.ok(!r.path.includes(KEY));
      assert.equal(r.query.apiKey, undefined);
    }
  });

  test('maps each bar size to multiplier and timespan', async () => {
    const { fake, source, clock } = await setup();
    const cases = [
      ['5Min', '5/minute'],
      ['15Min', '15/minute'],
      ['30Min', '30/minute'],
      ['1Hour', '1/hour'],
      ['1Day', '1/day'],
    ] as const;
    for (const [size] of cases) await driveClock(clock, [fake], source.fetchBars('QQQ', size, T0, T0 + 86_400_000));
    assert.deepEqual(
      fake.log.map((r) => r.path.split('/').slice(6, 8).join('/')),
      cases.map(([, span]) => span),
    );
  });

  test('treats status DELAYED as success', async () => {
    const { fake, source, clock } = await setup({ status: 'DELAYED' });
    fake.setBars('QQQ', minuteBars('QQQ', T0, 3));
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 3 * MIN));
    assert.equal(bars.length, 3);
    assert.equal(source.lastStatus, 'DELAYED');
  });

  test('reads an absent results field as no bars', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('QQQ', []);
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 3 * MIN));
    assert.deepEqual(bars, []);
    assert.equal(fake.requests, 1);
    assert.equal(source.stats().errors, 0);
  });

  test('refuses a next_url that points to another origin and sends it nothing', async () => {
    const other = await startFakeMassive({ validKeys: [KEY] });
    fakes.push(other);
    const { fake, source, clock } = await setup({ pageSize: 2 });
    fake.setBars('QQQ', minuteBars('QQQ', T0, 6));
    fake.setNextUrlOrigin(other.url.replace('127.0.0.1', 'localhost'));
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 6 * MIN)));
    assert.equal(err.code, 'MALFORMED');
    assert.match(err.message, /next_url points to/);
    assert.ok(!err.message.includes(KEY));
    assert.equal(other.requests, 0);
    assert.equal(fake.requests, 1);
    assert.equal(source.stats().lastError?.code, 'MALFORMED');
  });

  test('keeps to the rate limit across pages: the fake never sees more than 5 requests in a minute', async () => {
    const { fake, source, clock } = await setup({ pageSize: 2, rateLimit: { limit: 5 } }, { rateLimitPerMin: 5 });
    const served = minuteBars('QQQ', T0, 24);
    fake.setBars('QQQ', served);
    const started = clock.now();
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 24 * MIN));
    assert.equal(bars.length, 24);
    assert.equal(fake.requests, 12);
    assert.equal(fake.maxInWindow, 5);
    assert.ok(
      fake.log.every((r) => r.status === 200),
      'no request was refused',
    );
    assert.equal(source.stats().rateLimited, 0);
    // 12 requests at 5 per minute need two full windows of waiting.
    assert.ok(clock.now() - started >= 2 * MIN);
  });

  test('concurrent fetches of one source share its limiter', async () => {
    const { fake, source, clock } = await setup({ pageSize: 2, rateLimit: { limit: 5 } }, { rateLimitPerMin: 5 });
    for (const s of ['AAA', 'BBB', 'CCC']) fake.setBars(s, minuteBars(s, T0, 6));
    const results = await driveClock(clock, [fake], Promise.all(['AAA', 'BBB', 'CCC'].map((s) => source.fetchBars(s, '1Min', T0, T0 + 6 * MIN))));
    assert.deepEqual(
      results.map((r) => r.length),
      [6, 6, 6],
    );
    assert.equal(fake.requests, 9);
    assert.ok(fake.maxInWindow <= 5, `fake saw ${fake.maxInWindow} in one window`);
    assert.ok(fake.log.every((r) => r.status === 200));
  });

  test('recovers from 429 by waiting for the window to free, not by hammering', async () => {
    // The client believes it may send 20 a minute; the vendor allows 3.
    const { fake, source, clock } = await setup({ pageSize: 2, rateLimit: { limit: 3 } }, { rateLimitPerMin: 20 });
    fake.setBars('QQQ', minuteBars('QQQ', T0, 12));
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 12 * MIN));
    assert.equal(bars.length, 12);
    const refused = fake.log.filter((r) => r.status === 429).length;
    assert.ok(refused >= 1);
    assert.equal(source.stats().rateLimited, refused);
    for (let i = 1; i < fake.log.length; i++) {
      if (fake.log[i - 1].status === 429) {
        assert.equal(fake.log[i].status, 200, 'a 429 is followed by a wait long enough to succeed');
        assert.ok(fake.log[i].at - fake.log[i - 1].at >= 59_000);
      }
    }
  });

  test('retries 5xx with backoff and then succeeds', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('QQQ', minuteBars('QQQ', T0, 5));
    fake.failNext(2, 503);
    const started = clock.now();
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 5 * MIN));
    assert.equal(bars.length, 5);
    assert.equal(fake.requests, 3);
    assert.equal(source.stats().retries, 2);
    assert.ok(clock.now() - started >= 1000 + 2000, 'backoff doubles on the clock');
  });

  test('reports UNAVAILABLE with the status once an outage outlasts the retries', async () => {
    const { fake, source, clock } = await setup({}, { maxRetries: 2 });
    fake.failNext(10, 502);
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(err.status, 502);
    assert.equal(err.retryable, true);
    assert.equal(fake.requests, 3);
    assert.equal(source.stats().lastError?.code, 'UNAVAILABLE');
  });

  test('reports 401 as AUTH with the vendor message and does not retry', async () => {
    const { fake, source, clock } = await setup({ validKeys: ['another-key'] });
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'AUTH');
    assert.equal(err.status, 401);
    assert.equal(err.vendorMessage, 'Unknown API Key');
    assert.match(err.message, /Unknown API Key/);
    assert.ok(!err.message.includes(KEY));
    assert.ok(!JSON.stringify(source.stats()).includes(KEY));
    assert.equal(fake.requests, 1);
  });

  test('reports 403 NOT_AUTHORIZED as FORBIDDEN with the vendor message and does not retry', async () => {
    const { fake, source, clock } = await setup();
    fake.setForbidden(true);
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'FORBIDDEN');
    assert.equal(err.status, 403);
    assert.match(err.vendorMessage ?? '', /not entitled/);
    assert.equal(fake.requests, 1);
  });

  test('reports 400 as BAD_REQUEST without retrying', async () => {
    const { fake, source, clock } = await setup();
    fake.failNext(1, 400, { status: 'ERROR', request_id: 'x', error: 'Could not parse the time parameter' });
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + MIN)));
    assert.equal(err.code, 'BAD_REQUEST');
    assert.equal(err.vendorMessage, 'Could not parse the time parameter');
    assert.equal(fake.requests, 1);
  });

  test('retries a body that is not JSON once, then reports MALFORMED; the next call works', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('QQQ', minuteBars('QQQ', T0, 4));
    fake.malformedNext(1);
    assert.equal((await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 4 * MIN))).length, 4);
    assert.equal(fake.requests, 2);

    fake.malformedNext(2);
    const err = await rejection(driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 4 * MIN)));
    assert.equal(err.code, 'MALFORMED');
    assert.equal(fake.requests, 4);

    assert.equal((await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 4 * MIN))).length, 4);
  });

  test('skips and counts malformed bars inside a good page and logs a warning', async () => {
    const warnings: object[] = [];
    const logger = { warn: (o: object) => warnings.push(o), info() {}, debug() {} };
    const { fake, source, clock } = await setup({}, { logger });
    const good = minuteBars('QQQ', T0, 4);
    fake.setWireBars('QQQ', '1Min', [
      toMassiveWire(good[0]),
      { ...toMassiveWire(good[1]), o: 'abc' },
      toMassiveWire(good[1]),
      { ...toMassiveWire(good[2]), h: 1, l: 2 },
      toMassiveWire(good[2]),
      { t: T0 + 3 * MIN, o: 1, h: 1, l: 1, c: 1 }, // no volume
      toMassiveWire(good[3]),
      { ...toMassiveWire(good[3]), t: T0 + 3 * MIN + 17 }, // not on a minute
      null,
    ]);
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 4 * MIN));
    assert.deepEqual(strip(bars), strip(good));
    assert.equal(source.stats().malformed, 5);
    assert.equal(warnings.length, 1);
    assert.ok(!JSON.stringify(warnings).includes(KEY));
  });

  test('reports a response that never comes as TIMEOUT after its retries', async () => {
    const clock = new RealClock();
    const fake = await startFakeMassive({ validKeys: [KEY] });
    fakes.push(fake);
    const source = new MassiveSource({ apiKey: KEY, restUrl: fake.url, clock, rateLimitPerMin: 100, timeoutMs: 150, maxRetries: 1, backoffMs: 1 });
    sources.push(source);
    fake.slowNext(2, 3000);
    const err = await rejection(source.fetchBars('QQQ', '1Min', T0, T0 + MIN));
    assert.equal(err.code, 'TIMEOUT');
    assert.equal(fake.requests, 2);
  });

  test('retries a connection dropped mid-response', async () => {
    const { fake, source, clock } = await setup();
    fake.setBars('QQQ', minuteBars('QQQ', T0, 3));
    fake.dropNext(1);
    const bars = await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + 3 * MIN));
    assert.equal(bars.length, 3);
    assert.equal(fake.requests, 2);
    assert.equal(source.stats().retries, 1);
  });

  test('gives up with ABORTED when the caller aborts while waiting for the limiter', async () => {
    const { fake, source, clock } = await setup({}, { rateLimitPerMin: 1 });
    fake.setBars('QQQ', minuteBars('QQQ', T0, 1));
    await driveClock(clock, [fake], source.fetchBars('QQQ', '1Min', T0, T0 + MIN));
    const ac = new AbortController();
    const pending = source.fetchBars('QQQ', '1Min', T0, T0 + MIN, ac.signal);
    ac.abort();
    const err = await rejection(pending);
    assert.equal(err.code, 'ABORTED');
    assert.equal(fake.requests, 1);
  });

  test('refuses a bad symbol before sending anything', async () => {
    const { fake, source } = await setup();
    const err = await rejection(source.fetchBars('qqq/../x', '1Min', T0, T0 + MIN));
    assert.equal(err.code, 'BAD_REQUEST');
    assert.match(err.message, /symbol/);
    assert.equal(fake.requests, 0);
  });

  test('refuses a missing key at construction', () => {
    assert.throws(
      () => new MassiveSource({ apiKey: '', clock: new RealClock() }),
      (e: unknown) => e instanceof SourceError && e.code === 'AUTH',
    );
  });
});

describe('MassiveStream', () => {
  const bar = (start: number): Bar => ({ ...minuteBars('QQQ', start, 1)[0] });

  async function streamSetup(key = KEY) {
    const fake = await startFakeMassive({ validKeys: [KEY] });
    fakes.push(fake);
    const stream = new MassiveStream({ apiKey: key, url: massiveStreamUrl(fake.url), clock: new RealClock(), backoffMs: 20 });
    return { fake, stream };
  }

  test('authenticates, subscribes AM.<ticker> and emits minute aggregates as bars', async () => {
    const { fake, stream } = await streamSetup();
    try {
      stream.subscribe(['QQQ']);
      await stream.connect();
      await waitFor(() => fake.stream.subscriptions()[0]?.includes('AM.QQQ'), 'subscribed to AM.QQQ');
      const got = once(stream, 'bar');
      assert.equal(fake.stream.pushMinuteBar('QQQ', bar(T0)), 1);
      const [b] = (await got) as [Bar];
      assert.deepEqual(
        { symbol: b.symbol, barSize: b.barSize, start: b.start, o: b.open, h: b.high, l: b.low, c: b.close, v: b.volume, src: b.source },
        { symbol: 'QQQ', barSize: '1Min', start: T0, o: 100, h: 101, l: 99, c: 100.5, v: 1000, src: 'massive' },
      );
    } finally {
      await stream.close();
    }
  });

  test('rejects connect() with AUTH on a bad key and does not reconnect', async () => {
    const { fake, stream } = await streamSetup('wrong-key');
    try {
      const err = await rejection(stream.connect());
      assert.equal(err.code, 'AUTH');
      assert.match(err.message, /authentication failed/);
      assert.ok(!err.message.includes('wrong-key'));
      assert.equal(stream.state, 'failed');
      assert.equal(fake.stream.authAttempts, 1);
    } finally {
      await stream.close();
    }
  });

  test('reconnects after a drop, authenticates again and resubscribes', async () => {
    const { fake, stream } = await streamSetup();
    try {
      const states: string[] = [];
      stream.on('status', (s) => states.push(s.state));
      stream.subscribe(['QQQ', 'SPY']);
      await stream.connect();
      await waitFor(() => fake.stream.subscriptions()[0]?.length === 2, 'two subscriptions');
      fake.stream.dropAll();
      await waitFor(() => fake.stream.authAttempts === 2 && fake.stream.subscriptions()[0]?.length === 2, 'subscribed again after the second login');
      assert.ok(states.includes('reconnecting'));
      assert.equal(stream.counters.reconnects, 1);
      const got = once(stream, 'bar');
      fake.stream.pushMinuteBar('SPY', { ...bar(T0 + MIN), symbol: 'SPY' });
      const [b] = (await got) as [Bar];
      assert.equal(b.symbol, 'SPY');
    } finally {
      await stream.close();
    }
  });

  test('rejects connect() with UNAVAILABLE when nothing listens', async () => {
    // Port 1 on loopback: connection refused at once.
    const stream = new MassiveStream({ apiKey: KEY, url: 'ws://127.0.0.1:1/stocks', clock: new RealClock() });
    const err = await rejection(stream.connect());
    assert.equal(err.code, 'UNAVAILABLE');
    assert.equal(stream.state, 'failed');
    await stream.close();
  });
});
