import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DateTime } from 'luxon';
import { MARKET_ZONE, marketDay } from '../../src/market/calendar.ts';

const H = 3_600_000;

test('a New York day runs from its midnight to the next, whichever side of UTC midnight the instant is', () => {
  // 2026-01-05 23:30 New York is 2026-01-06 04:30 UTC: still the 5th in New York.
  const late = Date.UTC(2026, 0, 6, 4, 30);
  assert.deepEqual(marketDay(late), { date: '2026-01-05', start: Date.UTC(2026, 0, 5, 5), end: Date.UTC(2026, 0, 6, 5) });
  // Midnight itself belongs to the day it starts.
  assert.equal(marketDay(Date.UTC(2026, 0, 6, 5)).date, '2026-01-06');
  assert.equal(marketDay(Date.UTC(2026, 0, 6, 5) - 1).date, '2026-01-05');
  // Summer: midnight is 04:00 UTC.
  assert.deepEqual(marketDay(Date.UTC(2026, 6, 15, 12)), { date: '2026-07-15', start: Date.UTC(2026, 6, 15, 4), end: Date.UTC(2026, 6, 16, 4) });
});

test('the days the clocks change last 23 and 25 hours', () => {
  const spring = marketDay(Date.UTC(2026, 2, 8, 15)); // Sunday 2026-03-08, EST -> EDT
  assert.equal(spring.date, '2026-03-08');
  assert.equal(spring.end - spring.start, 23 * H);
  const autumn = marketDay(Date.UTC(2026, 10, 1, 15)); // Sunday 2026-11-01, EDT -> EST
  assert.equal(autumn.date, '2026-11-01');
  assert.equal(autumn.end - autumn.start, 25 * H);
});

test('marketDay agrees with the IANA zone through luxon on every day of two years', () => {
  for (let t = Date.UTC(2025, 0, 1, 17); t < Date.UTC(2027, 0, 1); t += 24 * H) {
    const day = DateTime.fromMillis(t, { zone: MARKET_ZONE }).startOf('day');
    assert.deepEqual(marketDay(t), { date: day.toISODate(), start: day.toMillis(), end: day.plus({ days: 1 }).toMillis() });
  }
});
