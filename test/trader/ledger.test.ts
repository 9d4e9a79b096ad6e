import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newYorkDay } from '../../src/actors/trader/ledger.ts';

const H = 3_600_000;

test("today's P&L day is New York's: midnight to midnight, 23 hours when the clocks spring forward and 25 when they fall back", () => {
  // Sunday 2025-03-09 (EST -> EDT) and Sunday 2025-11-02 (EDT -> EST), asked at New York noon.
  const spring = newYorkDay(Date.UTC(2025, 2, 9, 16));
  assert.deepEqual(spring, { start: Date.UTC(2025, 2, 9, 5), end: Date.UTC(2025, 2, 10, 4) });
  assert.equal(spring.end - spring.start, 23 * H);
  const fall = newYorkDay(Date.UTC(2025, 10, 2, 17));
  assert.deepEqual(fall, { start: Date.UTC(2025, 10, 2, 4), end: Date.UTC(2025, 10, 3, 5) });
  assert.equal(fall.end - fall.start, 25 * H);
  // The last millisecond of a day belongs to it; the next one starts the next day.
  const day = newYorkDay(Date.UTC(2025, 5, 2, 14));
  assert.deepEqual(newYorkDay(day.end - 1), day);
  assert.equal(newYorkDay(day.end).start, day.end);
});
