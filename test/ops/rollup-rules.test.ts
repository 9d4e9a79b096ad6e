/**
 * The collector's rollup (src/actors/collector/rollup.ts) on a real LMDB cache in a temp folder:
 * when a larger bar is finished, what it is built from, and what it announces.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rollup } from '../../src/actors/collector/rollup.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { openStorage } from '../../src/storage/storage.ts';

const MIN = 60_000;
const cal = new MarketCalendar();
/** Friday 2026-11-27: the NYSE closes at 13:00. */
const DAY = '2026-11-27';

function minute(start: number, close: number, volume = 100): Bar {
  return { symbol: 'QQQ', barSize: '1Min', start, open: close - 0.1, high: close + 0.2, low: close - 0.3, close, volume, vwap: close, trades: 4, source: 'sim', receivedAt: start + MIN };
}

async function setup(traded: BarSize, alwaysOpen = false) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-rollup.rules-'));
  const storage = openStorage({ path: join(dir, 'data') });
  const clock = new ManualClock(cal.wallTime(DAY, 12, 0));
  // The subscription the arbiter keeps when the trader asks it for `traded` bars.
  await storage.checkpoints.put('arbiter', { symbols: ['QQQ'], barSize: traded });
  const announced: Array<{ barSize: BarSize; starts: number[] }> = [];
  const rollup = new Rollup({
    store: storage.bars,
    checkpoints: storage.checkpoints,
    calendar: cal,
    clock,
    log: createLogger({ level: 'silent' }),
    alwaysOpen,
    historyDays: 1,
    announce: (barSize, _symbol, starts) => announced.push({ barSize, starts }),
  });
  const write = async (bars: Bar[]) => {
    await storage.bars.putMany(bars);
    rollup.onWritten(
      '1Min',
      'QQQ',
      bars.map((b) => b.start),
    );
    await rollup.idle();
  };
  return {
    storage,
    rollup,
    announced,
    write,
    clock,
    async [Symbol.asyncDispose]() {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a 5Min bar is written once its last minute is cached, and not before', async () => {
  await using r = await setup('5Min');
  const t = cal.wallTime(DAY, 10, 0);
  await r.write([0, 1, 2, 3].map((i) => minute(t + i * MIN, 100 + i)));
  assert.equal(r.storage.bars.get('QQQ', '5Min', t), undefined, 'four minutes of five: not finished');
  assert.deepEqual(r.announced, []);
  await r.write([minute(t + 4 * MIN, 99)]);
  const bar = r.storage.bars.get('QQQ', '5Min', t)!;
  assert.deepEqual(
    { open: bar.open, high: bar.high, low: bar.low, close: bar.close, volume: bar.volume, trades: bar.trades },
    { open: 99.9, high: 103.2, low: 98.7, close: 99, volume: 500, trades: 20 },
  );
  assert.deepEqual(r.announced, [{ barSize: '5Min', starts: [t] }]);
});

test('a minute with no trades does not hold a 5Min bar back: a later minute finishes it', async () => {
  await using r = await setup('5Min');
  const t = cal.wallTime(DAY, 10, 0);
  await r.write([minute(t, 100), minute(t + MIN, 101)]);
  await r.write([minute(t + 6 * MIN, 102)]);
  assert.equal(r.storage.bars.get('QQQ', '5Min', t)?.volume, 200);
  assert.deepEqual(r.announced, [{ barSize: '5Min', starts: [t] }]);
});

test('a corrected minute rebuilds its 5Min bar; the same minute again writes nothing', async () => {
  await using r = await setup('5Min');
  const t = cal.wallTime(DAY, 10, 0);
  await r.write([0, 1, 2, 3, 4].map((i) => minute(t + i * MIN, 100)));
  await r.write([minute(t + 2 * MIN, 100)]);
  assert.equal(r.announced.length, 1, 'nothing changed: nothing written');
  await r.write([minute(t + 2 * MIN, 100, 700)]);
  assert.equal(r.storage.bars.get('QQQ', '5Min', t)?.volume, 1100);
  assert.equal(r.announced.length, 2);
});

test('the first rollup of a symbol builds its cached history too, so the warm-up finds bars of the traded size', async () => {
  await using r = await setup('15Min');
  const t = cal.wallTime(DAY, 10, 0);
  await r.storage.bars.putMany(Array.from({ length: 45 }, (_, i) => minute(t + i * MIN, 100 + i)));
  await r.write([minute(t + 45 * MIN, 200)]);
  assert.deepEqual(
    r.storage.bars.range('QQQ', '15Min', t, t + 45 * MIN).map((b) => [b.start, b.open, b.close]),
    [
      [t, 99.9, 114],
      [t + 15 * MIN, 114.9, 129],
      [t + 30 * MIN, 129.9, 144],
    ],
  );
});

test('on an early close the 1Day bar is the session from 09:30 to 13:00, keyed at New York midnight', async () => {
  await using r = await setup('1Day');
  const open = cal.wallTime(DAY, 9, 30);
  const close = cal.wallTime(DAY, 13, 0);
  const pre = minute(open - 10 * MIN, 50);
  const session = Array.from({ length: (close - open) / MIN }, (_, i) => minute(open + i * MIN, 100 + (i % 7)));
  const after = minute(close + MIN, 500);
  await r.write([pre, ...session, after]);
  const day = r.storage.bars.get('QQQ', '1Day', cal.dayStart(DAY))!;
  assert.equal(day.open, 99.9);
  assert.equal(day.close, session[session.length - 1].close);
  assert.equal(day.volume, session.length * 100, 'pre-market and after-hours minutes are not in it');
  assert.equal(day.high, 106.2);
});

test('nothing is built for a symbol or size the loop does not trade, nor when it trades the collected size', async () => {
  await using r = await setup('1Min');
  const t = cal.wallTime(DAY, 10, 0);
  await r.write([0, 1, 2, 3, 4, 5].map((i) => minute(t + i * MIN, 100)));
  assert.equal(r.storage.bars.get('QQQ', '5Min', t), undefined);
  await r.storage.checkpoints.put('arbiter', { symbols: ['SPY'], barSize: '5Min' });
  await r.write([minute(t + 6 * MIN, 100)]);
  assert.equal(r.storage.bars.get('QQQ', '5Min', t), undefined);
  assert.deepEqual(r.announced, []);
});
