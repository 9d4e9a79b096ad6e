/**
 * IbkrDataFeed.fetchHistorical against the TWS simulator: every date format TWS sends, pacing,
 * and the error answers.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/market/clock.ts';
import { IbkrConnection } from '../../src/sources/ibkr/connection.ts';
import { IbkrDataFeed, type IbkrDataFeedOptions } from '../../src/sources/ibkr/data-feed.ts';
import { IbkrError } from '../../src/sources/ibkr/errors.ts';
import { startTwsSimulator, type TwsSimulator, type TwsSimulatorOptions } from '../fakes/tws/index.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0); // 09:30 New York
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(simOpts: TwsSimulatorOptions = {}, feedOpts: Partial<IbkrDataFeedOptions> = {}): Promise<{ sim: TwsSimulator; feed: IbkrDataFeed }> {
  const sim = await startTwsSimulator({ clock: new ManualClock(START), ...simOpts });
  // The client library's outgoing queue drains in real time: unbounded here, so no message waits while the clock moves.
  const connection = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 3, clock: sim.clock, maxRequestsPerSecond: 1e6 });
  const feed = new IbkrDataFeed({ connection, clock: sim.clock, ownsConnection: true, ...feedOpts });
  cleanups.push(async () => {
    await feed.close();
    await sim.close();
  });
  feed.start();
  return { sim, feed };
}

function assertMatchesSim(sim: TwsSimulator, symbol: string, bars: Awaited<ReturnType<IbkrDataFeed['fetchHistorical']>>, lenMs: number): void {
  for (const b of bars) {
    const want = sim.prices.bar(symbol, b.start, b.start + lenMs);
    assert.deepEqual(
      { open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, vwap: b.vwap, trades: b.trades },
      { open: want.open, high: want.high, low: want.low, close: want.close, volume: want.volume, vwap: want.wap, trades: want.count },
      `bar at ${new Date(b.start).toISOString()}`,
    );
    assert.equal(b.source, 'ibkr-historical');
    assert.equal(b.symbol, symbol);
  }
}

const FROM = START - 3_600_000;
const TO = START - 1_800_000;
const FIVE_MIN_STARTS = Array.from({ length: 6 }, (_, i) => FROM + i * 300_000);

for (const [label, formatDate, style] of [
  ['epoch seconds (formatDate 2)', 2, 'tz-name'],
  ['yyyyMMdd HH:mm:ss US/Eastern (formatDate 1)', 1, 'tz-name'],
  ['yyyyMMdd-HH:mm:ss UTC (formatDate 1, UTC setting)', 1, 'utc'],
  ['yyyyMMdd  HH:mm:ss, two spaces (formatDate 1, older TWS)', 1, 'two-space'],
] as const) {
  test(`historical 5-minute bars with dates as ${label} come back as our bars`, async () => {
    const { sim, feed } = await setup({ historicalDateStyle: style }, { historical: { formatDate } });
    const bars = await sim.run(feed.fetchHistorical('MSFT', '5Min', FROM, TO));
    assert.deepEqual(
      bars.map((b) => b.start),
      FIVE_MIN_STARTS,
    );
    assertMatchesSim(sim, 'MSFT', bars, 300_000);
    const req = sim.requestLog.find((r) => r.type === 'REQ_HISTORICAL_DATA');
    assert.equal(req?.fields[20], String(formatDate));
  });
}

test('daily bars (yyyyMMdd even with formatDate 2) start at midnight New York time', async () => {
  const { sim, feed } = await setup();
  const bars = await sim.run(feed.fetchHistorical('AAPL', '1Day', Date.UTC(2025, 0, 10, 5), Date.UTC(2025, 0, 14, 5)));
  assert.deepEqual(
    bars.map((b) => new Date(b.start).toISOString()),
    ['2025-01-10T05:00:00.000Z', '2025-01-11T05:00:00.000Z', '2025-01-12T05:00:00.000Z', '2025-01-13T05:00:00.000Z'],
  );
});

test('a range that reaches now leaves out the bar still forming', async () => {
  const { sim, feed } = await setup();
  const now = sim.clock.now();
  const bars = await sim.run(feed.fetchHistorical('AAPL', '1Min', now - 600_000, now + 600_000));
  assert.ok(bars.length >= 9);
  // On the manual clock "now" is the minute's start: the ten minutes before it, none after.
  assert.deepEqual(
    bars.map((b) => (b.start - now) / 60_000),
    [-10, -9, -8, -7, -6, -5, -4, -3, -2, -1],
  );
  const last = bars[bars.length - 1];
  assert.ok(last.start + 60_000 <= sim.clock.now(), 'only complete bars');
  assert.equal(sim.requestLog.find((r) => r.type === 'REQ_HISTORICAL_DATA')?.fields[15], '', 'end "now" is sent as ""');
});

test('a pacing violation backs off and retries, then succeeds', async () => {
  const { sim, feed } = await setup({}, { historical: { pacingBackoffMs: 20_000 } });
  sim.injectPacingViolations(1);
  const bars = await sim.run(feed.fetchHistorical('MSFT', '5Min', FROM, TO));
  assert.equal(bars.length, 6);
  const reqs = sim.requestLog.filter((r) => r.type === 'REQ_HISTORICAL_DATA');
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1].at - reqs[0].at >= 20_000, 'the retry waited out the backoff');
  assert.equal(reqs[1].at - reqs[0].at, 20_000, 'and no longer');
  assert.equal(feed.status().historical.pacingViolations, 1);
});

test('a burst of historical requests never trips a simulator that enforces the three pacing rules', async () => {
  // The simulator judges arrival times on the manual clock, where the pacer's waits are exact.
  const { sim, feed } = await setup({ enforcePacing: true });
  const jobs = [];
  for (let i = 0; i < 8; i++) jobs.push(feed.fetchHistorical('MSFT', '1Min', FROM + i * 60_000, FROM + i * 60_000 + 600_000));
  jobs.push(feed.fetchHistorical('MSFT', '1Min', FROM, FROM + 600_000)); // identical to the first
  const results = await sim.run(Promise.all(jobs));
  assert.ok(results.every((r) => r.length === 10));
  assert.equal(sim.pacingViolations, 0);
  assert.equal(sim.countRequests('REQ_HISTORICAL_DATA'), 9);
});

test('no permission is IBKR_UNAVAILABLE and an unknown contract is IBKR_BAD_CONTRACT', async () => {
  const { sim, feed } = await setup();
  sim.setMarketDataError('ZZZZ', 200);
  await assert.rejects(
    sim.run(feed.fetchHistorical('NOPERM', '1Min', FROM, TO)),
    (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_UNAVAILABLE' && e.ibCode === 420 && /NOPERM/.test(e.message),
  );
  await assert.rejects(sim.run(feed.fetchHistorical('ZZZZ', '1Min', FROM, TO)), (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_BAD_CONTRACT' && /ZZZZ/.test(e.message));
});

test('a request waits for the connection and is answered after a drop', async () => {
  const { sim, feed } = await setup();
  await sim.run(feed.fetchHistorical('MSFT', '5Min', FROM, TO));
  sim.dropClients();
  const bars = await sim.run(feed.fetchHistorical('MSFT', '5Min', FROM - 1_800_000, FROM));
  assert.equal(bars.length, 6);
  assert.equal(sim.connections, 2);
});
