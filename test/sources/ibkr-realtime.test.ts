/**
 * IbkrDataFeed real-time bars against the TWS simulator, both on one ManualClock that the test moves
 * (`sim.advanceUntil`), so bars, stalls and retries happen at exact simulated times.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { IbkrConnection } from '../../src/sources/ibkr/connection.ts';
import { IbkrDataFeed, type IbkrDataFeedOptions } from '../../src/sources/ibkr/data-feed.ts';
import { startTwsSimulator, type TwsSimulator } from '../fakes/tws/index.ts';
import { record } from '../helpers/wait.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0); // 09:30 New York
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

let nextClientId = 10;

async function setup(opts: Partial<IbkrDataFeedOptions> = {}): Promise<{ sim: TwsSimulator; feed: IbkrDataFeed }> {
  const sim = await startTwsSimulator({ clock: new ManualClock(START) });
  // The client library's outgoing queue drains in real time: unbounded here, so no message waits while the clock moves.
  const connection = new IbkrConnection({ host: sim.host, port: sim.port, clientId: nextClientId++, clock: sim.clock, maxRequestsPerSecond: 1e6 });
  const feed = new IbkrDataFeed({ connection, clock: sim.clock, ownsConnection: true, ...opts });
  cleanups.push(async () => {
    await feed.close();
    await sim.close();
  });
  feed.start();
  return { sim, feed };
}

/** What the minute bar must be, built from the simulator's own 5 s bars. */
function expectedMinute(sim: TwsSimulator, symbol: string, start: number) {
  const fives = Array.from({ length: 12 }, (_, i) => sim.fiveSecondBar(symbol, start + i * 5000));
  const volume = fives.reduce((s, f) => s + f.volume, 0);
  return {
    open: fives[0].open,
    high: Math.max(...fives.map((f) => f.high)),
    low: Math.min(...fives.map((f) => f.low)),
    close: fives[11].close,
    volume,
    vwap: fives.reduce((s, f) => s + f.wap * f.volume, 0) / volume,
    trades: fives.reduce((s, f) => s + f.count, 0),
  };
}

test('5-second bars are aggregated into 1-minute bars with the right OHLCV', async () => {
  // A long grace and no stall checks: this test is about aggregation, not timing.
  const { sim, feed } = await setup({ graceMs: 600_000, stallIntervals: 1000 });
  const bars = record<[Bar]>(feed, 'bar');
  feed.subscribeRealtime('AAPL', '1Min');
  await sim.advanceUntil(() => bars.seen.length >= 3, 'three minute bars');
  // The first bar may be partial (the subscription began mid-minute); the next ones are whole.
  for (const [bar] of bars.seen.slice(1, 3)) {
    assert.equal(bar.symbol, 'AAPL');
    assert.equal(bar.barSize, '1Min');
    assert.equal(bar.source, 'ibkr-realtime');
    assert.equal(bar.start % 60_000, 0);
    const want = expectedMinute(sim, 'AAPL', bar.start);
    assert.deepEqual(
      { open: bar.open, high: bar.high, low: bar.low, close: bar.close, volume: bar.volume, trades: bar.trades },
      { open: want.open, high: want.high, low: want.low, close: want.close, volume: want.volume, trades: want.trades },
    );
    assert.ok(Math.abs(bar.vwap - want.vwap) < 1e-6, `vwap ${bar.vwap} vs ${want.vwap}`);
    assert.ok(bar.receivedAt >= bar.start + 60_000, 'a bar is emitted once its interval has ended');
  }
  assert.equal(bars.seen[2][0].start - bars.seen[1][0].start, 60_000);
});

test('420 for a symbol makes it unavailable at once, retried slowly and not hammered, and it recovers', async () => {
  const { sim, feed } = await setup({ unavailableRetry: { initialMs: 10_000, maxMs: 240_000 } });
  sim.setMarketDataError('QQQ', 420);
  const unavailable = record<[string, number, string]>(feed, 'unavailable');
  const recovered = record<[string]>(feed, 'recovered');
  const subscribedAt = sim.clock.now();
  feed.subscribeRealtime('QQQ', '1Min');
  await sim.advanceUntil(() => unavailable.seen.length > 0, 'unavailable');
  assert.equal(unavailable.seen[0][0], 'QQQ');
  assert.equal(unavailable.seen[0][1], 420);
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS', 'QQQ'), 1, 'the answer came from the first request');
  assert.equal(feed.status().realtime[0].state, 'unavailable');

  await sim.advanceUntil(() => sim.clock.now() - subscribedAt >= 430_000, '430 simulated seconds');
  const requests = sim.countRequests('REQ_REAL_TIME_BARS', 'QQQ');
  // 420 asks for a minute at least (IB's pacing, over the 10 s configured), then the wait doubles:
  // retries at +60 s, +180 s and +420 s, four requests where a hammering loop would send thousands.
  assert.equal(requests, 4, `requests in 430 s: ${requests}`);
  assert.equal(unavailable.seen.length, 1, 'unavailable is reported once, not per retry');
  const times = sim.requestLog.filter((r) => r.type === 'REQ_REAL_TIME_BARS' && r.symbol === 'QQQ').map((r) => r.at);
  // On the manual clock each request is stamped at the simulated time it was sent: the gaps double.
  for (let i = 2; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= times[i - 1] - times[i - 2], 'gaps between retries never shrink');
  assert.deepEqual(
    times.slice(1).map((t, i) => t - times[i]),
    [60_000, 120_000, 240_000],
  );

  sim.clearMarketDataError('QQQ');
  await sim.advanceUntil(() => recovered.seen.length > 0, 'recovered');
  assert.equal(recovered.seen[0][0], 'QQQ');
  assert.equal(feed.status().realtime[0].state, 'streaming');
});

test('a subscription that goes silent is reported as a stall, and recovers when bars come back', async () => {
  const { sim, feed } = await setup({ stallIntervals: 3 });
  const stalls = record<[string, number]>(feed, 'stall');
  const recovered = record<[string]>(feed, 'recovered');
  feed.subscribeRealtime('MSFT', '1Min');
  feed.subscribeRealtime('IBM', '1Min');
  await sim.advanceUntil(() => feed.status().realtime.every((s) => s.state === 'streaming'), 'streaming');
  const lastBar = () => feed.status().realtime.find((s) => s.symbol === 'MSFT')?.lastBarAt ?? 0;
  sim.silence('MSFT');
  await sim.advanceUntil(() => stalls.seen.some(([s]) => s === 'MSFT'), 'stall');
  const stall = stalls.seen.find(([s]) => s === 'MSFT') ?? assert.fail('no stall');
  const detectedAt = sim.clock.now();
  assert.ok(detectedAt - stall[1] >= 3 * 5000, 'not reported before three silent intervals');
  assert.equal(stall[1], lastBar(), 'the stall names the time of the last bar');
  assert.equal(feed.status().realtime.find((s) => s.symbol === 'MSFT')?.state, 'stalled');
  await sim.advanceUntil(() => sim.countRequests('REQ_REAL_TIME_BARS', 'MSFT') >= 2, 'the dead stream requested again');
  sim.unsilence('MSFT');
  await sim.advanceUntil(() => recovered.seen.some(([s]) => s === 'MSFT'), 'recovered');
  assert.equal(feed.status().realtime.find((s) => s.symbol === 'MSFT')?.state, 'streaming');
  assert.equal(sim.realTimeSubscriptions('MSFT'), 1, 'exactly one live stream after recovery');
});

test('a stream that died on the server side comes back by itself through the stall resubscription', async () => {
  const { sim, feed } = await setup({ stallIntervals: 3 });
  const stalls = record<[string, number]>(feed, 'stall');
  const recovered = record<[string]>(feed, 'recovered');
  feed.subscribeRealtime('AAPL', '1Min');
  await sim.advanceUntil(() => feed.status().realtime[0]?.state === 'streaming', 'streaming');
  sim.silence('AAPL', 'subscription');
  await sim.advanceUntil(() => stalls.seen.length > 0, 'stall');
  await sim.advanceUntil(() => recovered.seen.length > 0, 'recovered');
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS', 'AAPL'), 2);
  assert.equal(sim.realTimeSubscriptions('AAPL'), 1, 'the dead stream was cancelled');
});

test('no stall is reported while the market is closed', async () => {
  const { sim, feed } = await setup({ stallIntervals: 2, isMarketOpen: () => false });
  const stalls = record<[string, number]>(feed, 'stall');
  feed.subscribeRealtime('AAPL', '1Min');
  await sim.advanceUntil(() => feed.status().realtime[0]?.state === 'streaming', 'streaming');
  sim.silence('AAPL');
  const from = sim.clock.now();
  await sim.advanceUntil(() => sim.clock.now() - from >= 50_000, 'ten silent intervals');
  assert.equal(stalls.seen.length, 0);
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS', 'AAPL'), 1);
});

test('after the socket drops the feed reconnects, resubscribes once, and bars flow again', async () => {
  const { sim, feed } = await setup({ graceMs: 600_000, stallIntervals: 1000 });
  const bars = record<[Bar]>(feed, 'bar');
  const states = record<[string]>(feed, 'connection');
  feed.subscribeRealtime('AAPL', '1Min');
  await sim.advanceUntil(() => bars.seen.length >= 1, 'a bar');
  sim.dropClients();
  await sim.advanceUntil(() => states.seen.some(([s]) => s === 'disconnected') && feed.connection.state === 'connected', 'reconnected');
  const seenBefore = bars.seen.length;
  await sim.advanceUntil(() => bars.seen.length >= seenBefore + 2, 'bars after the reconnect');
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS', 'AAPL'), 2);
  assert.equal(sim.realTimeSubscriptions('AAPL'), 1);
  assert.equal(sim.connections, 2);
  const starts = bars.seen.map(([b]) => b.start);
  assert.deepEqual(
    starts,
    [...new Set(starts)].sort((a, b) => a - b),
    'no bar twice, none out of order',
  );
});

test('1101 (data lost) resubscribes everything; 1100 pauses without stall alarms; 1102 carries on', async () => {
  const { sim, feed } = await setup({ stallIntervals: 2 });
  const stalls = record<[string, number]>(feed, 'stall');
  const codes = record<[number, string | undefined]>(feed, 'ibError');
  feed.subscribeRealtime('AAPL', '1Min');
  feed.subscribeRealtime('MSFT', '1Min');
  await sim.advanceUntil(() => feed.status().realtime.every((s) => s.state === 'streaming'), 'streaming');

  sim.sendNotice(1100);
  await sim.advanceUntil(() => feed.status().connection === 'link-lost', 'link-lost');
  const pausedAt = sim.clock.now();
  await sim.advanceUntil(() => sim.clock.now() - pausedAt >= 30_000, 'six silent intervals');
  assert.equal(stalls.seen.length, 0, 'no stall alarms while TWS has lost IB');
  sim.sendNotice(1102);
  await sim.advanceUntil(() => feed.status().connection === 'connected', 'connected');
  const resumedAt = sim.clock.now();
  await sim.advanceUntil(() => feed.status().realtime.every((s) => (s.lastBarAt ?? 0) > resumedAt), 'bars again');
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS'), 2, '1102 keeps the subscriptions');

  sim.sendNotice(1101);
  await sim.advanceUntil(() => sim.realTimeSubscriptions() === 2, 'resubscribed');
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS'), 4);
  const restoredAt = sim.clock.now();
  await sim.advanceUntil(() => feed.status().realtime.every((s) => (s.lastBarAt ?? 0) > restoredAt), 'bars after 1101');
  assert.deepEqual(
    [1100, 1102, 1101].map((c) => codes.seen.some(([code]) => code === c)),
    [true, true, true],
  );
});

test('200 (unknown contract) is reported clearly once and not retried', async () => {
  const { sim, feed } = await setup({ unavailableRetry: { initialMs: 5_000, maxMs: 5_000 } });
  sim.setMarketDataError('ZZZZ', 200);
  const unavailable = record<[string, number, string]>(feed, 'unavailable');
  feed.subscribeRealtime('ZZZZ', '1Min');
  await sim.advanceUntil(() => unavailable.seen.length > 0, 'unavailable');
  assert.equal(unavailable.seen[0][1], 200);
  assert.match(unavailable.seen[0][2], /does not know the contract STK ZZZZ/);
  const at = sim.clock.now();
  await sim.advanceUntil(() => sim.clock.now() - at >= 30_000, '30 simulated seconds');
  assert.equal(sim.countRequests('REQ_REAL_TIME_BARS', 'ZZZZ'), 1);
  assert.equal(feed.status().realtime[0].state, 'bad-contract');
});

test('bad input is refused with a message naming the field', async () => {
  const { feed } = await setup();
  assert.throws(() => feed.subscribeRealtime('qqq', '1Min'), /symbol/);
  assert.throws(() => feed.subscribeRealtime('QQQ', '2Min' as never), /barSize/);
  await assert.rejects(feed.fetchHistorical('QQQ', '1Min', 10, 5), /from must be before to/);
});
