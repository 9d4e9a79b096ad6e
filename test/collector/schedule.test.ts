import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DEFAULT_SCHEDULE, ScheduleError, isTradingHours, nextCycleAt, type NextCycle, type ScheduleConfig } from '../../src/actors/collector/schedule.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { ManualClock } from '../../src/market/clock.ts';

const cal = new MarketCalendar();
const iso = (s: string) => Date.parse(s);
const MIN = 60_000;

/**
 * Runs the schedule like the collector does, on a manual clock: from 00:00 New York on `date` to
 * the next midnight, sleep until the next cycle, record it, ask again.
 */
function cyclesOfDay(date: string, cfg: ScheduleConfig = DEFAULT_SCHEDULE, opts: { alwaysOpen?: boolean } = {}): NextCycle[] {
  const start = cal.dayStart(date);
  const end = cal.dayStart(start + 36 * 3_600_000);
  const clock = new ManualClock(start);
  const out: NextCycle[] = [];
  for (;;) {
    const next = nextCycleAt(clock.now(), cal, cfg, opts);
    assert.ok(next.at > clock.now(), 'the next cycle is always later than now');
    if (next.at >= end) return out;
    clock.set(next.at);
    out.push(next);
  }
}

const count = (cycles: NextCycle[], reason: NextCycle['reason']) => cycles.filter((c) => c.reason === reason).length;
const gaps = (cycles: NextCycle[]) => new Set(cycles.slice(1).map((c, i) => c.at - cycles[i].at));
const ny = (date: string, hh: number, mm: number, ss = 0) => cal.wallTime(date, hh, mm) + ss * 1000;

describe('collector schedule on trading days', () => {
  test('a normal day has 390 one-minute cycles in regular hours, from 09:31:03 to 16:00:03', () => {
    const cycles = cyclesOfDay('2026-03-10');
    const regular = cycles.filter((c) => c.reason === 'regular');
    assert.equal(regular.length, 390);
    assert.equal(regular[0].at, ny('2026-03-10', 9, 31, 3));
    assert.equal(regular.at(-1)!.at, ny('2026-03-10', 16, 0, 3));
    assert.deepEqual(gaps(regular), new Set([MIN]));
  });

  test('pre-market and after hours cycle every 5 minutes, after one session-start cycle at 04:00:03', () => {
    const cycles = cyclesOfDay('2026-03-10');
    assert.deepEqual(cycles[0], { at: ny('2026-03-10', 4, 0, 3), reason: 'closed' });
    const { close } = cal.sessionBounds('2026-03-10')!;
    const pre = cycles.filter((c) => c.reason === 'extended' && c.at < close);
    const post = cycles.filter((c) => c.reason === 'extended' && c.at > close);
    assert.equal(pre.length, 66);
    assert.equal(pre[0].at, ny('2026-03-10', 4, 5, 3));
    assert.equal(pre.at(-1)!.at, ny('2026-03-10', 9, 30, 3), 'the last pre-market cycle fetches the 09:25-09:29 bars');
    assert.deepEqual(gaps(pre), new Set([5 * MIN]));
    assert.equal(post.length, 48);
    assert.equal(post[0].at, ny('2026-03-10', 16, 5, 3));
    assert.equal(post.at(-1)!.at, ny('2026-03-10', 20, 0, 3));
    assert.deepEqual(gaps(post), new Set([5 * MIN]));
    assert.equal(cycles.length, 1 + 66 + 390 + 48, 'nothing overnight');
  });

  test('after 09:30:10 the next cycle is 09:31:03, and asking at a cycle time gives the one after', () => {
    assert.deepEqual(nextCycleAt(ny('2026-03-10', 9, 30, 10), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-10', 9, 31, 3), reason: 'regular' });
    assert.deepEqual(nextCycleAt(ny('2026-03-10', 9, 31, 3), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-10', 9, 32, 3), reason: 'regular' });
    assert.deepEqual(nextCycleAt(ny('2026-03-10', 9, 30, 0), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-10', 9, 30, 3), reason: 'extended' });
    assert.deepEqual(nextCycleAt(ny('2026-03-10', 16, 0, 1), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-10', 16, 0, 3), reason: 'regular' });
  });

  test('an early close (2026-11-27) stops one-minute cycles at 13:00:03 and after hours at 17:00:03', () => {
    const cycles = cyclesOfDay('2026-11-27');
    const regular = cycles.filter((c) => c.reason === 'regular');
    assert.equal(regular.length, 210);
    assert.equal(regular.at(-1)!.at, ny('2026-11-27', 13, 0, 3));
    assert.ok(cycles.filter((c) => c.at > ny('2026-11-27', 13, 0, 3)).every((c) => c.reason === 'extended'));
    assert.equal(cycles.at(-1)!.at, ny('2026-11-27', 17, 0, 3));
    assert.equal(count(cycles, 'extended'), 66 + 48);
  });

  test('days beside the DST switches open their regular cycles at 13:31:03Z under EDT and 14:31:03Z under EST', () => {
    const firstRegular = (date: string) => cyclesOfDay(date).find((c) => c.reason === 'regular')!.at;
    assert.equal(firstRegular('2026-03-06'), iso('2026-03-06T14:31:03Z'));
    assert.equal(firstRegular('2026-03-09'), iso('2026-03-09T13:31:03Z'));
    assert.equal(firstRegular('2026-10-30'), iso('2026-10-30T13:31:03Z'));
    assert.equal(firstRegular('2026-11-02'), iso('2026-11-02T14:31:03Z'));
    for (const d of ['2026-03-06', '2026-03-09', '2026-10-30', '2026-11-02']) assert.equal(count(cyclesOfDay(d), 'regular'), 390, d);
  });

  test('the 23-hour switch day itself (Sunday 2026-03-08) gets its catch-up at 04:00:03 EDT', () => {
    assert.deepEqual(cyclesOfDay('2026-03-08'), [{ at: iso('2026-03-08T08:00:03Z'), reason: 'closed-day-catch-up' }]);
    assert.deepEqual(cyclesOfDay('2026-11-01'), [{ at: iso('2026-11-01T09:00:03Z'), reason: 'closed-day-catch-up' }]);
  });
});

describe('collector schedule on closed days', () => {
  test('a holiday (Thanksgiving 2026-11-26) gives only the catch-up cycle', () => {
    assert.deepEqual(cyclesOfDay('2026-11-26'), [{ at: ny('2026-11-26', 4, 0, 3), reason: 'closed-day-catch-up' }]);
  });

  test('a weekend gives one catch-up a day, then Monday starts at the pre-market open', () => {
    let now = ny('2026-03-13', 20, 0, 3); // Friday's last after-hours cycle
    const seen: NextCycle[] = [];
    for (let i = 0; i < 3; i++) {
      const next = nextCycleAt(now, cal, DEFAULT_SCHEDULE);
      seen.push(next);
      now = next.at;
    }
    assert.deepEqual(seen, [
      { at: ny('2026-03-14', 4, 0, 3), reason: 'closed-day-catch-up' },
      { at: ny('2026-03-15', 4, 0, 3), reason: 'closed-day-catch-up' },
      { at: ny('2026-03-16', 4, 0, 3), reason: 'closed' },
    ]);
  });

  test('with closedDayCatchUp off, closed days get no cycle and it sleeps to the next session', () => {
    const cfg = { ...DEFAULT_SCHEDULE, closedDayCatchUp: false };
    assert.deepEqual(cyclesOfDay('2026-11-26', cfg), []);
    assert.deepEqual(nextCycleAt(ny('2026-04-02', 20, 0, 3), cal, cfg), { at: ny('2026-04-06', 4, 0, 3), reason: 'closed' });
  });

  test('overnight on a trading day it sleeps until the next pre-market open', () => {
    assert.deepEqual(nextCycleAt(ny('2026-03-10', 22, 15), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-11', 4, 0, 3), reason: 'closed' });
    assert.deepEqual(nextCycleAt(ny('2026-03-11', 2, 0), cal, DEFAULT_SCHEDULE), { at: ny('2026-03-11', 4, 0, 3), reason: 'closed' });
  });
});

describe('collector schedule options', () => {
  test('alwaysOpen (the simulated market) cycles every minute around the clock, weekends included', () => {
    const cycles = cyclesOfDay('2026-03-14', DEFAULT_SCHEDULE, { alwaysOpen: true });
    assert.equal(cycles.length, 1440);
    assert.ok(cycles.every((c) => c.reason === 'regular'));
    assert.deepEqual(gaps(cycles), new Set([MIN]));
    assert.equal(nextCycleAt(ny('2026-03-10', 9, 30, 10), cal, DEFAULT_SCHEDULE, { alwaysOpen: true }).at, ny('2026-03-10', 9, 31, 3));
  });

  test('intervals and settle are configurable', () => {
    const cfg: ScheduleConfig = { marketHoursIntervalMs: 2 * MIN, offHoursIntervalMs: 15 * MIN, settleMs: 0, closedDayCatchUp: true };
    const cycles = cyclesOfDay('2026-03-10', cfg);
    assert.equal(count(cycles, 'regular'), 195);
    assert.equal(cycles.find((c) => c.reason === 'regular')!.at, ny('2026-03-10', 9, 32));
    assert.equal(count(cycles, 'extended'), 22 + 16);
  });

  test('a bad config is refused with a code and the field name', () => {
    const bad: [Partial<ScheduleConfig>, string][] = [
      [{ marketHoursIntervalMs: 0 }, 'marketHoursIntervalMs'],
      [{ offHoursIntervalMs: -5 }, 'offHoursIntervalMs'],
      [{ settleMs: 1.5 }, 'settleMs'],
      [{ closedDayCatchUp: 'yes' as unknown as boolean }, 'closedDayCatchUp'],
    ];
    for (const [patch, field] of bad) {
      assert.throws(
        () => nextCycleAt(0, cal, { ...DEFAULT_SCHEDULE, ...patch }),
        (e: unknown) => e instanceof ScheduleError && e.code === 'SCHEDULE_BAD_CONFIG' && e.message.includes(field),
      );
    }
  });

  test('isTradingHours is true in the regular session only, or always with alwaysOpen', () => {
    assert.equal(isTradingHours(ny('2026-03-10', 9, 30), cal), true);
    assert.equal(isTradingHours(ny('2026-03-10', 9, 29, 59), cal), false);
    assert.equal(isTradingHours(ny('2026-03-10', 16, 0), cal), false);
    assert.equal(isTradingHours(ny('2026-11-26', 11, 0), cal), false);
    assert.equal(isTradingHours(ny('2026-11-26', 11, 0), cal, { alwaysOpen: true }), true);
  });
});
