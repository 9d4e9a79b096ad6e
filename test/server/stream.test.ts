/**
 * `barkeep serve` with Alpaca keys streams by default (alpaca.websocket: true): a bar the vendor
 * sends reaches the cache and the trader, the stream's health is in /data-collector/status and
 * /metrics, and a symbol added at /data-collector/start is subscribed on the open connection.
 * A real child process against the Alpaca fake (REST and stream) on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { type FakeAlpaca, startFakeAlpaca } from '../fakes/alpaca/server.ts';
import { serve, until } from '../helpers/serve.ts';

const KEY_ID = 'PKSERVESTREAM001';
const SECRET = 'serve-stream-secret-001';
const MIN = 60_000;

const fakes: FakeAlpaca[] = [];
after(async () => {
  for (const f of fakes) await f.close();
});

test('with Alpaca keys the stream is on by default: a streamed bar reaches the trader, and status and metrics show the stream', async () => {
  const fake = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], generate: true });
  fakes.push(fake);
  await using app = await serve({
    env: { APCA_API_KEY_ID: KEY_ID, APCA_API_SECRET_KEY: SECRET, APCA_API_DATA_URL: fake.url },
    yaml: 'collector:\n  symbols: [QQQ]\n  backfill_days: 1\ntrader:\n  symbols: [QQQ]\n',
  });
  const live = await until(async () => {
    const s = (await app.get('/data-collector/status')).body;
    return s.mode === 'stream' && s.streams?.alpaca?.state === 'live' && s.cycles >= 1 && s;
  }, 'the Alpaca stream live and the backfill done');
  assert.equal(live.source, 'alpaca');
  assert.deepEqual(live.streams.alpaca.subscribed, ['QQQ']);
  assert.equal(live.streams.alpaca.mode, 'stream');
  assert.equal(typeof live.streams.alpaca.since, 'string');
  assert.equal(live.rate_budget.available, 200);
  assert.deepEqual(fake.stream.feeds(), ['iex']);

  // The vendor sends the minute under way (the trader has every earlier one from the backfill).
  const start = Math.floor(Date.now() / MIN) * MIN;
  const bar: Bar = { symbol: 'QQQ', barSize: '1Min', start, open: 400, high: 401, low: 399, close: 400.5, volume: 1234, vwap: 400.2, trades: 17, source: 'alpaca', receivedAt: 0 };
  await until(async () => fake.stream.pushMinuteBar('QQQ', bar) === 1, 'the bar sent');
  await until(async () => {
    const t = (await app.get('/live/status')).body;
    return t.last_bar_time !== null && Date.parse(t.last_bar_time) >= start;
  }, 'the trader has the streamed bar');
  const metrics = (await app.get('/metrics')).body as string;
  assert.match(metrics, /barkeep_stream_bars_total\{source="alpaca"\} 1\b/);
  assert.match(metrics, /barkeep_stream_mode\{source="alpaca"\} 1\b/);
  assert.match(metrics, /barkeep_stream_state\{source="alpaca",state="live"\} 1\b/);

  // A new symbol is subscribed on the open connection.
  const started = await app.post('/data-collector/start', { symbols: ['QQQ', 'SPY'], bar_size: '1Min' });
  assert.equal(started.status, 200);
  await until(async () => {
    const s = (await app.get('/data-collector/status')).body;
    return s.streams.alpaca.subscribed.length === 2 && s;
  }, 'SPY subscribed');
  assert.equal(fake.stream.authAttempts, 1, 'no reconnect');
  assert.ok(!metrics.includes(SECRET) && !metrics.includes(KEY_ID));
});
