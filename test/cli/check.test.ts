import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, describe, test } from 'node:test';
import { checkCommand } from '../../src/cli/check.ts';
import type { Bar } from '../../src/market/bar.ts';
import { type Clock, ManualClock, RealClock } from '../../src/market/clock.ts';
import { startFakeAlpaca, type FakeAlpaca } from '../fakes/alpaca/server.ts';
import { driveClock } from '../fakes/massive/clock-driver.ts';
import { startFakeMassive, type FakeMassive } from '../fakes/massive/server.ts';

const KEY = 'sekrit-MASSIVE-key-7731';
const KEY_ID = 'PKCHECKKEYID7731';
const SECRET = 'sekrit-ALPACA-secret-7731';
/** Wednesday 2026-03-04, 10:00 New York (EST): the regular session. */
const OPEN = Date.UTC(2026, 2, 4, 15, 0);
/** Saturday 2026-03-07, 12:00 New York: closed. */
const SATURDAY = Date.UTC(2026, 2, 7, 17, 0);
const MIN = 60_000;

const fakes: Array<FakeMassive | FakeAlpaca> = [];
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

async function run(argv: string[], env: NodeJS.ProcessEnv, clock: Clock, fake?: { inFlight: number }) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => (text += String(d)));
  const work = checkCommand(argv, { env, out, clock });
  const code = clock instanceof ManualClock && fake ? await driveClock(clock, [fake], work) : await work;
  return { code, text, lines: text.trim().split('\n') };
}

function line(text: string, name: string): string {
  return text.split('\n').find((l) => l.slice(6).startsWith(name)) ?? '';
}

function minuteBars(symbol: string, from: number, n: number): Bar[] {
  return Array.from({ length: n }, (_, i) => ({
    symbol,
    barSize: '1Min' as const,
    start: from + i * MIN,
    open: 400,
    high: 401,
    low: 399,
    close: 400.5,
    volume: 100,
    vwap: 400.2,
    trades: 3,
    source: 'massive' as const,
    receivedAt: 0,
  }));
}

async function massive(start: number, opts: Parameters<typeof startFakeMassive>[0] = {}) {
  const clock = new ManualClock(start);
  const fake = await startFakeMassive({ validKeys: [KEY], clock, generate: true, ...opts });
  fakes.push(fake);
  const env = { MASSIVE_API_KEY: KEY, MASSIVE_REST_URL: fake.url };
  return { clock, fake, env };
}

describe('barkeep check massive', () => {
  test('passes every check against a healthy fake, within the free plan rate limit, without printing the key', async () => {
    const { clock, fake, env } = await massive(OPEN, { rateLimit: { limit: 5 } });
    const { code, text, lines } = await run(['massive', '--symbol', 'QQQ', '--duration', '30'], env, clock, fake);
    assert.equal(code, 0, text);
    for (const name of ['key', 'connection', 'history', 'real-time']) assert.match(line(text, name), /^PASS /, text);
    assert.match(line(text, 'history'), /1Min bars for QQQ/);
    assert.match(line(text, 'real-time'), /REST polls in 30 s/);
    assert.ok(!text.includes(KEY));
    // Checks 2–3 and the polls together stay within 5 per minute; the fake never refused one.
    assert.ok(fake.maxInWindow <= 5, `fake saw ${fake.maxInWindow} requests in one minute`);
    assert.ok(fake.log.every((r) => r.status === 200));
    assert.ok(fake.requests >= 4);
    assert.match(lines.at(-1)!, /^OK: 4\/4/);
  });

  test('fails with the HTTP status and the vendor message against a bad key, and skips the rest', async () => {
    const { clock, fake } = await massive(OPEN);
    const env = { MASSIVE_API_KEY: 'not-the-right-key', MASSIVE_REST_URL: fake.url };
    const { code, text } = await run(['massive', '--symbol', 'QQQ', '--duration', '1'], env, clock, fake);
    assert.equal(code, 1);
    const conn = line(text, 'connection');
    assert.match(conn, /^FAIL /);
    assert.match(conn, /HTTP 401/);
    assert.match(conn, /Unknown API Key/);
    assert.match(conn, /rate limit \d+\/5 left/);
    assert.match(line(text, 'history'), /^SKIP /);
    assert.match(line(text, 'real-time'), /^SKIP /);
    assert.ok(!text.includes('not-the-right-key'));
    assert.equal(fake.requests, 1, 'a 401 is not retried');
  });

  test('fails the key check with no key configured and sends nothing', async () => {
    const { clock, fake } = await massive(OPEN);
    const { code, text } = await run(['massive'], { MASSIVE_REST_URL: fake.url }, clock, fake);
    assert.equal(code, 1);
    assert.match(line(text, 'key'), /^FAIL .*MASSIVE_API_KEY/);
    assert.equal(fake.requests, 0);
  });

  test('reads POLYGON_API_KEY as the Massive key', async () => {
    const { clock, fake } = await massive(SATURDAY);
    const { code, text } = await run(['massive', '--duration', '1'], { POLYGON_API_KEY: KEY, MASSIVE_REST_URL: fake.url }, clock, fake);
    assert.equal(code, 0, text);
  });

  test('passes with a note when the market is closed and no new bars come', async () => {
    const { clock, fake, env } = await massive(SATURDAY, { generate: false });
    fake.setBars('QQQ', minuteBars('QQQ', SATURDAY - 20 * 3_600_000, 30)); // Friday afternoon
    const { code, text } = await run(['massive', '--duration', '20'], env, clock, fake);
    assert.equal(code, 0, text);
    assert.match(line(text, 'real-time'), /^PASS .*0 new bars.*market closed/);
  });

  test('fails real-time during the regular session when the newest bar is stale, and says DELAYED', async () => {
    const { clock, fake, env } = await massive(OPEN, { generate: false, status: 'DELAYED' });
    fake.setBars('QQQ', minuteBars('QQQ', OPEN - 60 * MIN, 40)); // ends 20 minutes ago
    const { code, text } = await run(['massive', '--duration', '10'], env, clock, fake);
    assert.equal(code, 1, text);
    assert.match(line(text, 'history'), /^PASS /);
    const rt = line(text, 'real-time');
    assert.match(rt, /^FAIL .*under 5 min old/);
    assert.match(rt, /DELAYED/);
  });

  test('reports a 403 NOT_AUTHORIZED plan error with the vendor message', async () => {
    const { clock, fake, env } = await massive(OPEN);
    fake.setForbidden(true);
    const { code, text } = await run(['massive', '--duration', '1'], env, clock, fake);
    assert.equal(code, 1);
    assert.match(line(text, 'connection'), /^FAIL  connection FORBIDDEN: .*HTTP 403.*not entitled to this data/);
  });

  test('collects from the stream with --stream', async () => {
    const fake = await startFakeMassive({ validKeys: [KEY], generate: true });
    fakes.push(fake);
    const env = { MASSIVE_API_KEY: KEY, MASSIVE_REST_URL: fake.url };
    const { code, text } = await run(['massive', '--duration', '1', '--stream'], env, new RealClock());
    assert.equal(code, 0, text);
    assert.match(line(text, 'real-time'), /^PASS .*stream live/);
    assert.equal(fake.stream.authAttempts, 1);
  });

  test('falls back to REST polling when the stream refuses the connection', async () => {
    const fake = await startFakeMassive({ validKeys: [KEY], generate: true });
    fakes.push(fake);
    const env = { MASSIVE_API_KEY: KEY, MASSIVE_REST_URL: fake.url };
    const argv = ['massive', '--duration', '1', '--stream', '--ws-url', 'ws://127.0.0.1:1/stocks'];
    const { text } = await run(argv, env, new RealClock());
    assert.match(line(text, 'real-time'), /stream failed \(UNAVAILABLE.*fell back to REST polling: \d+ REST polls? in 1 s/);
  });

  test('refuses bad usage with exit code 2', async () => {
    const clock = new RealClock();
    assert.equal((await run(['bloomberg'], {}, clock)).code, 2);
    assert.equal((await run(['massive', '--duration', '0'], {}, clock)).code, 2);
    assert.equal((await run(['massive', '--symbol', 'not a ticker'], {}, clock)).code, 2);
    const { code, text } = await run(['massive', '--frobnicate'], {}, clock);
    assert.equal(code, 2);
    assert.match(text, /usage: barkeep check/);
  });
});

describe('barkeep check alpaca', () => {
  async function alpaca(start: number) {
    const clock = new ManualClock(start);
    const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], clock, generate: true });
    fakes.push(fake);
    return { clock, fake };
  }

  test('passes against a healthy fake and sends feed=iex on every request', async () => {
    const { clock, fake } = await alpaca(OPEN);
    const env = { APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: SECRET, APCA_API_DATA_URL: fake.url };
    const { code, text } = await run(['alpaca', '--symbol', 'SPY', '--duration', '30'], env, clock, fake);
    assert.equal(code, 0, text);
    for (const name of ['key', 'connection', 'history', 'real-time']) assert.match(line(text, name), /^PASS /, text);
    assert.ok(fake.log.every((r) => r.query.feed === 'iex'));
    assert.ok(fake.requests >= 5, 'polls every 10 s with room to spare at 200 a minute');
    assert.ok(!text.includes(SECRET) && !text.includes(KEY_ID));
  });

  test('reports 403 as a credentials or plan error', async () => {
    const { clock, fake } = await alpaca(OPEN);
    const env = { APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: 'wrong-secret', APCA_API_DATA_URL: fake.url };
    const { code, text } = await run(['alpaca', '--duration', '1'], env, clock, fake);
    assert.equal(code, 1);
    const conn = line(text, 'connection');
    assert.match(conn, /^FAIL .*HTTP 403.*credentials or plan \(feed\) not permitted.*forbidden\./);
    assert.match(conn, /Alpaca says \d+\/200 left/);
    assert.ok(!text.includes('wrong-secret'));
  });
});
