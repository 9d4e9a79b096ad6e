/** Rolling bars up into larger sizes on NYSE session boundaries (src/market/aggregate.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canRollUp, combineBars, rollupBucket } from '../../src/market/aggregate.ts';
import type { Bar } from '../../src/market/bar.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';

const cal = new MarketCalendar();
const ny = (date: string, h: number, m = 0) => cal.wallTime(date, h, m);

test('a larger bar is built only from a size that divides it, and a day from any intraday size', () => {
  assert.equal(canRollUp('1Min', '5Min'), true);
  assert.equal(canRollUp('5Min', '15Min'), true);
  assert.equal(canRollUp('15Min', '1Hour'), true);
  assert.equal(canRollUp('30Min', '1Day'), true);
  assert.equal(canRollUp('1Min', '1Min'), false);
  assert.equal(canRollUp('5Min', '1Min'), false);
  assert.equal(canRollUp('1Day', '1Day'), false);
});

test('5Min buckets start on the clock and a 1Hour bucket cut by the 09:30 open or the 13:00 early close ends there', () => {
  const d = '2026-01-06';
  assert.deepEqual(rollupBucket(ny(d, 10, 7), '5Min', cal, false), { start: ny(d, 10, 5), from: ny(d, 10, 5), end: ny(d, 10, 10) });
  assert.deepEqual(rollupBucket(ny(d, 9, 10), '1Hour', cal, false), { start: ny(d, 9), from: ny(d, 9), end: ny(d, 9, 30) });
  assert.deepEqual(rollupBucket(ny(d, 9, 45), '1Hour', cal, false), { start: ny(d, 9, 30), from: ny(d, 9, 30), end: ny(d, 10) });
  // 2026-11-27 closes at 13:00: a 30Min bucket at 12:30 ends at the close; 13:00 starts after hours.
  const early = '2026-11-27';
  assert.deepEqual(rollupBucket(ny(early, 12, 59), '30Min', cal, false), { start: ny(early, 12, 30), from: ny(early, 12, 30), end: ny(early, 13) });
  assert.equal(rollupBucket(ny(early, 13, 0), '30Min', cal, false)?.start, ny(early, 13));
});

test('a 1Day bar is the regular session from 09:30 to the close, keyed at New York midnight; 24/7 it is the whole day', () => {
  const early = '2026-11-27';
  assert.deepEqual(rollupBucket(ny(early, 12, 59), '1Day', cal, false), { start: cal.dayStart(early), from: ny(early, 9, 30), end: ny(early, 13) });
  assert.equal(rollupBucket(ny(early, 13, 0), '1Day', cal, false), undefined, 'after hours belong to no daily bar');
  assert.equal(rollupBucket(ny('2026-11-26', 10), '1Day', cal, false), undefined, 'Thanksgiving has no session');
  assert.deepEqual(rollupBucket(ny(early, 20), '1Day', cal, true), { start: cal.dayStart(early), from: cal.dayStart(early), end: cal.dayStart('2026-11-28') });
});

test('combined bars take the first open, the last close, the extremes, summed volume and trades and a volume-weighted vwap', () => {
  const bar = (start: number, o: number, h: number, l: number, c: number, v: number, vwap: number, trades: number): Bar => ({
    symbol: 'QQQ',
    barSize: '1Min',
    start,
    open: o,
    high: h,
    low: l,
    close: c,
    volume: v,
    vwap,
    trades,
    source: 'sim',
    receivedAt: 0,
  });
  const out = combineBars([bar(0, 10, 11, 9.5, 10.5, 100, 10.2, 5), bar(60_000, 10.5, 12, 10, 11, 300, 11, 7)], '5Min', 0, 42);
  assert.deepEqual(
    { ...out, vwap: Math.round(out.vwap * 1000) / 1000 },
    {
      symbol: 'QQQ',
      barSize: '5Min',
      start: 0,
      open: 10,
      high: 12,
      low: 9.5,
      close: 11,
      volume: 400,
      vwap: 10.8,
      trades: 12,
      source: 'sim',
      receivedAt: 42,
    },
  );
  assert.equal(combineBars([bar(0, 1, 1, 1, 1, 1, Number.NaN, -1)], '5Min', 0, 0).trades, -1);
});
