/**
 * Every message the vendors' streams send has a deliberate answer (docs/market-data.md): both
 * Massive greetings, auth_timeout, auth_failed, max_connections; Alpaca 402, 404, 405, 406, 409;
 * bars without n or vw kept as unknown. Real WebSocket servers (the fakes) on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { RealClock } from '../../src/market/clock.ts';
import { AlpacaStream, alpacaStreamUrl } from '../../src/sources/alpaca/stream.ts';
import type { BarStream } from '../../src/sources/massive/bar-stream.ts';
import { MassiveStream, massiveStreamUrl } from '../../src/sources/massive/stream.ts';
import type { SourceError } from '../../src/sources/types.ts';
import { type FakeAlpaca, startFakeAlpaca } from '../fakes/alpaca/server.ts';
import { type FakeMassive, startFakeMassive } from '../fakes/massive/server.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = 'massive-stream-key-5521';
const KEY_ID = 'PKSTREAMKEY0001';
const SECRET = 'alpaca-stream-secret-0001';
const T0 = Date.UTC(2026, 2, 4, 15, 0);

const fakes: Array<FakeMassive | FakeAlpaca> = [];
const streams: BarStream[] = [];
after(async () => {
  for (const s of streams) await s.close();
  for (const f of fakes) await f.close();
});

type Failure = SourceError & { kind?: string };

function bar(symbol: string, start = T0, extra: Partial<Bar> = {}): Bar {
  return { symbol, barSize: '1Min', start, open: 10, high: 11, low: 9, close: 10.5, volume: 700, vwap: 10.2, trades: 12, source: 'massive', receivedAt: 0, ...extra };
}

async function rejection(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (err) {
    return err as Failure;
  }
  assert.fail('expected a rejection');
}

async function massive(opts: Parameters<typeof startFakeMassive>[0] = {}) {
  const fake = await startFakeMassive({ validKeys: [KEY], ...opts });
  fakes.push(fake);
  const make = () => {
    const s = new MassiveStream({ apiKey: KEY, url: massiveStreamUrl(fake.url), clock: new RealClock(), backoffMs: 20 });
    streams.push(s);
    return s;
  };
  return { fake, make };
}

async function alpaca(opts: Parameters<typeof startFakeAlpaca>[0] = {}, feed: 'iex' | 'sip' = 'iex') {
  const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], ...opts });
  fakes.push(fake);
  const make = () => {
    const s = new AlpacaStream({ keyId: KEY_ID, secretKey: SECRET, feed, url: alpacaStreamUrl(fake.url, feed), clock: new RealClock(), backoffMs: 20 });
    streams.push(s);
    return s;
  };
  return { fake, make };
}

describe('Massive stream messages', () => {
  test('authenticates after the documented greeting {"status":"success","message":"Connected Successfully"}', async () => {
    const { fake, make } = await massive({ stream: { greeting: 'success' } });
    const s = make();
    s.subscribe(['QQQ']);
    await s.connect();
    assert.equal(s.state, 'live');
    await waitFor(() => fake.stream.subscriptions()[0]?.includes('AM.QQQ'), 'subscribed');
    const got = once(s, 'bar');
    fake.stream.pushMinuteBar('QQQ', bar('QQQ'));
    const [b] = (await got) as [Bar];
    assert.equal(b.start, T0);
  });

  test('authenticates after the live servers\' greeting {"status":"connected"}', async () => {
    const { fake, make } = await massive({ stream: { greeting: 'connected' } });
    const s = make();
    await s.connect();
    assert.equal(s.state, 'live');
    assert.equal(fake.stream.authenticated, 1);
  });

  test('an acknowledgement {"status":"success"} after authentication is not taken for a greeting', async () => {
    const { fake, make } = await massive({ stream: { greeting: 'success' } });
    const s = make();
    s.subscribe(['QQQ', 'SPY']);
    await s.connect();
    await waitFor(() => fake.stream.subscriptions()[0]?.length === 2, 'subscribed');
    // Acks "subscribed to: ..." arrived after auth: still one auth attempt.
    assert.equal(fake.stream.authAttempts, 1);
  });

  test('an AM aggregate without vw is stored as unknown vwap, and trades as unknown', async () => {
    const { fake, make } = await massive();
    const s = make();
    s.subscribe(['QQQ']);
    await s.connect();
    await waitFor(() => fake.stream.subscriptions()[0]?.includes('AM.QQQ'), 'subscribed');
    const got = once(s, 'bar');
    fake.stream.pushMinuteBar('QQQ', bar('QQQ', T0, { vwap: NaN }));
    const [b] = (await got) as [Bar];
    assert.ok(Number.isNaN(b.vwap));
    assert.equal(b.trades, -1);
  });

  test('auth_timeout on a reconnect is answered by reconnecting, and the vendor text is in the status', async () => {
    const { fake, make } = await massive();
    const s = make();
    const notes: string[] = [];
    s.on('status', (st) => st.message && notes.push(st.message));
    await s.connect();
    fake.stream.timeoutNextAuth(1);
    fake.stream.dropAll();
    await waitFor(() => fake.stream.authenticated === 1 && s.state === 'live' && fake.stream.authAttempts === 3, 'live again');
    assert.ok(
      notes.some((m) => m.includes('auth_timeout: No authentication request received.')),
      notes.join(' | '),
    );
  });

  test('auth_failed ends the stream with AUTH and the vendor text, no reconnect', async () => {
    const fake = await startFakeMassive({ validKeys: ['another-key'] });
    fakes.push(fake);
    const s = new MassiveStream({ apiKey: KEY, url: massiveStreamUrl(fake.url), clock: new RealClock(), backoffMs: 20 });
    streams.push(s);
    const err = await rejection(s.connect());
    assert.equal(err.code, 'AUTH');
    assert.equal(err.kind, 'auth');
    assert.match(err.message, /authentication failed/);
    assert.equal(fake.stream.authAttempts, 1);
  });

  test('max_connections from a newer connection with the same key ends the older stream without a fight', async () => {
    const { fake, make } = await massive({ stream: { maxConnectionsPerKey: 1 } });
    const older = make();
    await older.connect();
    const failed = once(older, 'error');
    const newer = make();
    await newer.connect();
    const [err] = (await failed) as [Failure];
    assert.equal(err.kind, 'evicted');
    assert.match(err.message, /max_connections: .*Maximum number of websocket connections exceeded/);
    assert.equal(older.state, 'failed');
    assert.equal(newer.state, 'live');
    // The older one did not reconnect (which would evict the newer one in turn).
    assert.equal(fake.stream.authAttempts, 2);
    assert.equal(fake.stream.authenticated, 1);
  });
});

describe('Alpaca stream messages', () => {
  test('402 auth failed ends the stream with AUTH and the vendor text', async () => {
    const fake = await startFakeAlpaca({ validKeys: [{ keyId: 'other', secret: 'other' }] });
    fakes.push(fake);
    const s = new AlpacaStream({ keyId: KEY_ID, secretKey: SECRET, url: alpacaStreamUrl(fake.url, 'iex'), clock: new RealClock(), backoffMs: 20 });
    streams.push(s);
    const err = await rejection(s.connect());
    assert.equal(err.code, 'AUTH');
    assert.equal(err.kind, 'auth');
    assert.match(err.message, /error 402: auth failed/);
    assert.ok(!err.message.includes(SECRET));
  });

  test('404 auth timeout is answered by reconnecting', async () => {
    const { fake, make } = await alpaca();
    const s = make();
    const notes: string[] = [];
    s.on('status', (st) => st.message && notes.push(st.message));
    await s.connect();
    fake.stream.timeoutNextAuth(1);
    fake.stream.dropAll();
    await waitFor(() => fake.stream.authAttempts === 3 && s.state === 'live', 'live again');
    assert.ok(
      notes.some((m) => m.includes('error 404: auth timeout')),
      notes.join(' | '),
    );
  });

  test('405 symbol limit exceeded ends the stream (the new symbols would get no bars) with kind symbol_limit', async () => {
    const { make } = await alpaca({ stream: { symbolLimit: 2 } });
    const s = make();
    await s.connect();
    const failed = once(s, 'error');
    s.subscribe(['AAPL', 'MSFT', 'SPY']);
    const [err] = (await failed) as [Failure];
    assert.equal(err.kind, 'symbol_limit');
    assert.match(err.message, /error 405: symbol limit exceeded/);
  });

  test('406 connection limit exceeded refuses the new connection with kind evicted, no retry', async () => {
    const { fake, make } = await alpaca({ stream: { connectionLimit: 1 } });
    const first = make();
    await first.connect();
    const second = make();
    const err = await rejection(second.connect());
    assert.equal(err.kind, 'evicted');
    assert.match(err.message, /error 406: connection limit exceeded/);
    assert.equal(first.state, 'live');
    assert.equal(fake.stream.authAttempts, 2);
  });

  test('409 insufficient subscription (the plan lacks the feed) ends the stream with kind plan', async () => {
    const { make } = await alpaca({ stream: { forbiddenFeeds: ['sip'] } }, 'sip');
    const err = await rejection(make().connect());
    assert.equal(err.kind, 'plan');
    assert.equal(err.code, 'FORBIDDEN');
    assert.match(err.message, /error 409: insufficient subscription/);
  });

  test('other errors (410, 500) are logged and shown; the connection stays', async () => {
    const { fake, make } = await alpaca();
    const s = make();
    await s.connect();
    const noted = once(s, 'status');
    fake.stream.sendError(410, 'invalid subscribe action for this feed');
    const [st] = (await noted) as [{ message?: string; state: string }];
    assert.equal(st.state, 'live');
    assert.match(st.message ?? '', /error 410: invalid subscribe action/);
  });

  test('a bar without n or vw keeps trades and vwap unknown', async () => {
    const { fake, make } = await alpaca();
    const s = make();
    s.subscribe(['AAPL']);
    await s.connect();
    await waitFor(() => fake.stream.authenticated === 1, 'authenticated');
    const got = once(s, 'bar');
    await waitFor(() => fake.stream.pushMinuteBar('AAPL', bar('AAPL', T0, { trades: -1, vwap: NaN })) === 1, 'pushed');
    const [b] = (await got) as [Bar];
    assert.equal(b.trades, -1);
    assert.ok(Number.isNaN(b.vwap));
  });

  test('a frame of several bars (Alpaca batches data messages) yields every bar, in order', async () => {
    const { fake, make } = await alpaca();
    const s = make();
    const symbols = ['AAPL', 'MSFT', 'NVDA'];
    s.subscribe(symbols);
    await s.connect();
    await waitFor(() => fake.stream.authenticated === 1, 'authenticated');
    const got: Bar[] = [];
    s.on('bar', (b) => got.push(b));
    // Subscribed once a lone bar gets through.
    await waitFor(() => fake.stream.pushMinuteBar('MSFT', bar('MSFT', T0 - 60_000)) === 1, 'subscribed');
    await waitFor(() => got.length === 1, 'the lone bar');
    const framesBefore = s.counters.messages;
    const sent = fake.stream.pushMinuteBars(symbols.map((sym, i) => bar(sym, T0, { close: 10 + i / 10 })));
    assert.deepEqual(sent, { frames: 1, events: 3 }, 'one frame of three bars');
    await waitFor(() => got.length === 4, 'the three bars of the frame');
    assert.equal(s.counters.messages - framesBefore, 1, 'they came in one frame');
    assert.deepEqual(
      got.slice(1).map((b) => [b.symbol, b.start, b.close, b.source]),
      symbols.map((sym, i) => [sym, T0, 10 + i / 10, 'alpaca']),
    );
  });
});
