import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CalendarError, MarketCalendar } from '../../src/market/calendar.ts';

const cal = new MarketCalendar();
const iso = (s: string) => Date.parse(s);

/** Every date of a year, YYYY-MM-DD. */
function datesOf(year: number): string[] {
  const out: string[] = [];
  for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}
const isWeekend = (date: string) => [0, 6].includes(new Date(`${date}T12:00:00Z`).getUTCDay());

// docs/market-data.md, "The NYSE calendar": full-day closures and early closes, plus the 2028 preview.
const CLOSURES: Record<number, string[]> = {
  2025: ['2025-01-01', '2025-01-09', '2025-01-20', '2025-02-17', '2025-04-18', '2025-05-26', '2025-06-19', '2025-07-04', '2025-09-01', '2025-11-27', '2025-12-25'],
  2026: ['2026-01-01', '2026-01-19', '2026-02-16', '2026-04-03', '2026-05-25', '2026-06-19', '2026-07-03', '2026-09-07', '2026-11-26', '2026-12-25'],
  2027: ['2027-01-01', '2027-01-18', '2027-02-15', '2027-03-26', '2027-05-31', '2027-06-18', '2027-07-05', '2027-09-06', '2027-11-25', '2027-12-24'],
  2028: ['2028-01-17', '2028-02-21', '2028-04-14', '2028-05-29', '2028-06-19', '2028-07-04', '2028-09-04', '2028-11-23', '2028-12-25'],
};
const EARLY: Record<number, string[]> = {
  2025: ['2025-07-03', '2025-11-28', '2025-12-24'],
  2026: ['2026-11-27', '2026-12-24'],
  2027: ['2027-11-26'],
  2028: ['2028-07-03', '2028-11-24'],
};

describe('MarketCalendar holidays', () => {
  for (const year of [2025, 2026, 2027, 2028]) {
    test(`the weekdays closed in ${year} are exactly the vendor table's full-day closures`, () => {
      const closedWeekdays = datesOf(year).filter((d) => !isWeekend(d) && !cal.isTradingDay(d));
      assert.deepEqual(closedWeekdays, CLOSURES[year]);
      for (const d of CLOSURES[year]) assert.ok(cal.holiday(d), `${d} has a holiday name`);
      assert.deepEqual(
        cal.holidays(year).map((h) => h.date),
        CLOSURES[year],
      );
    });

    test(`the 13:00 early closes in ${year} are exactly the vendor table's`, () => {
      assert.deepEqual(
        datesOf(year).filter((d) => cal.isEarlyClose(d)),
        EARLY[year],
      );
    });
  }

  test('holidays carry their names, with observed dates marked', () => {
    assert.equal(cal.holiday('2025-04-18'), 'Good Friday');
    assert.equal(cal.holiday('2025-01-09'), 'National Day of Mourning (President Carter)');
    assert.equal(cal.holiday('2026-07-03'), 'Independence Day (observed)');
    assert.equal(cal.holiday('2027-06-18'), 'Juneteenth (observed)');
    assert.equal(cal.holiday('2027-12-24'), 'Christmas Day (observed)');
    assert.equal(cal.holiday('2026-11-26'), 'Thanksgiving Day');
  });

  test('a Saturday New Year is not observed: 2027-12-31 is a full trading day', () => {
    assert.equal(cal.isTradingDay('2027-12-31'), true);
    assert.equal(cal.isEarlyClose('2027-12-31'), false);
    assert.equal(cal.holiday('2028-01-01'), undefined);
    assert.equal(cal.sessionBounds('2027-12-31')?.close, iso('2027-12-31T21:00:00Z'));
  });

  test('Columbus Day and Veterans Day are trading days', () => {
    for (const d of ['2025-10-13', '2025-11-11', '2026-10-12', '2026-11-11', '2027-10-11', '2027-11-11']) {
      assert.equal(cal.isTradingDay(d), true, d);
    }
  });

  test('weekends are closed and have no holiday name', () => {
    assert.equal(cal.isTradingDay('2026-03-07'), false);
    assert.equal(cal.isTradingDay('2026-03-08'), false);
    assert.equal(cal.holiday('2026-03-07'), undefined);
    assert.equal(cal.sessionBounds('2026-03-07'), undefined);
    assert.equal(cal.sessionAt(iso('2026-03-07T15:00:00Z')), 'closed');
  });

  test('a holiday falling on a weekend closes nothing else: 2026-07-04 Saturday keeps Monday open', () => {
    assert.equal(cal.holiday('2026-07-04'), undefined);
    assert.equal(cal.isTradingDay('2026-07-06'), true);
  });

  test('the unscheduled closures table holds 2018-12-05 and 2025-01-09', () => {
    assert.equal(cal.isTradingDay('2018-12-05'), false);
    assert.match(cal.holiday('2018-12-05') ?? '', /Bush/);
    assert.equal(cal.isTradingDay('2025-01-09'), false);
    assert.equal(cal.isTradingDay('2025-01-08'), true);
  });

  test('extra closures passed to the constructor close the market, early-close days included', () => {
    const withStorm = new MarketCalendar({ extraClosures: ['2026-03-10', '2026-11-27'] });
    assert.equal(withStorm.isTradingDay('2026-03-10'), false);
    assert.equal(withStorm.holiday('2026-03-10'), 'Unscheduled closure');
    assert.equal(withStorm.isTradingDay('2026-11-27'), false);
    assert.equal(withStorm.isEarlyClose('2026-11-27'), false);
    assert.equal(withStorm.nextTradingDay('2026-03-09'), '2026-03-11');
    assert.equal(cal.isTradingDay('2026-03-10'), true, 'other calendars are unaffected');
  });

  test('a bad extra closure is refused with a code and the field name', () => {
    assert.throws(
      () => new MarketCalendar({ extraClosures: ['2026-03-10', '2026-02-30'] }),
      (err: unknown) => err instanceof CalendarError && err.code === 'CALENDAR_BAD_DATE' && err.message.includes('extraClosures[1]'),
    );
  });

  test('bad dates and times are refused with a code', () => {
    for (const bad of ['2026/01/01', '2026-1-1', '2026-02-29', '2026-13-01', '']) {
      assert.throws(
        () => cal.isTradingDay(bad),
        (e: unknown) => e instanceof CalendarError && e.code === 'CALENDAR_BAD_DATE',
        bad,
      );
    }
    assert.throws(
      () => cal.sessionAt(Number.NaN),
      (e: unknown) => e instanceof CalendarError && e.code === 'CALENDAR_BAD_TIME',
    );
    assert.throws(
      () => cal.wallTime('2026-01-05', 25),
      (e: unknown) => e instanceof CalendarError && e.code === 'CALENDAR_BAD_TIME',
    );
  });
});

describe('MarketCalendar sessions', () => {
  test('the 09:30 open is 13:30Z under EDT and 14:30Z under EST around the March and November 2026 switches', () => {
    assert.equal(cal.sessionBounds('2026-03-06')?.open, iso('2026-03-06T14:30:00Z')); // Fri, EST
    assert.equal(cal.sessionBounds('2026-03-09')?.open, iso('2026-03-09T13:30:00Z')); // Mon after Mar 8, EDT
    assert.equal(cal.sessionBounds('2026-10-30')?.open, iso('2026-10-30T13:30:00Z')); // Fri, EDT
    assert.equal(cal.sessionBounds('2026-11-02')?.open, iso('2026-11-02T14:30:00Z')); // Mon after Nov 1, EST
    assert.equal(cal.sessionBounds('2026-03-09')?.preOpen, iso('2026-03-09T08:00:00Z'));
    assert.equal(cal.sessionBounds('2026-11-02')?.postClose, iso('2026-11-03T01:00:00Z'));
  });

  test('New York days are 23 hours long at the spring switch and 25 at the autumn one', () => {
    assert.equal(cal.dayStart('2026-03-08'), iso('2026-03-08T05:00:00Z'));
    assert.equal(cal.dayStart('2026-03-09') - cal.dayStart('2026-03-08'), 23 * 3_600_000);
    assert.equal(cal.dayStart('2026-11-01'), iso('2026-11-01T04:00:00Z'));
    assert.equal(cal.dayStart('2026-11-02') - cal.dayStart('2026-11-01'), 25 * 3_600_000);
  });

  test('dateOf and dayStart follow New York midnight, not UTC', () => {
    assert.equal(cal.dateOf(iso('2026-01-06T04:59:59.999Z')), '2026-01-05');
    assert.equal(cal.dateOf(iso('2026-01-06T05:00:00Z')), '2026-01-06');
    assert.equal(cal.dateOf(iso('2026-07-06T03:59:59.999Z')), '2026-07-05');
    assert.equal(cal.dayStart(iso('2026-07-06T03:59:59.999Z')), iso('2026-07-05T04:00:00Z'));
    assert.equal(cal.dayStart(iso('2026-03-08T07:30:00Z')), iso('2026-03-08T05:00:00Z'));
  });

  test('session boundaries are exact to the millisecond on a normal day', () => {
    const b = cal.sessionBounds('2026-01-06')!;
    assert.deepEqual(
      [b.preOpen, b.open, b.close, b.postClose].map((t) => new Date(t).toISOString()),
      ['2026-01-06T09:00:00.000Z', '2026-01-06T14:30:00.000Z', '2026-01-06T21:00:00.000Z', '2026-01-07T01:00:00.000Z'],
    );
    const expect: [number, string][] = [
      [b.preOpen - 1, 'closed'],
      [b.preOpen, 'pre'],
      [b.open - 1, 'pre'],
      [b.open, 'regular'],
      [b.close - 1, 'regular'],
      [b.close, 'post'],
      [b.postClose - 1, 'post'],
      [b.postClose, 'closed'],
    ];
    for (const [t, s] of expect) assert.equal(cal.sessionAt(t), s, new Date(t).toISOString());
    assert.equal(cal.isRegularHours(b.open), true);
    assert.equal(cal.isRegularHours(b.close), false);
  });

  test('an early-close day ends regular hours at 13:00 and after hours at 17:00', () => {
    const b = cal.sessionBounds('2026-11-27')!;
    assert.equal(b.earlyClose, true);
    assert.equal(b.close, iso('2026-11-27T18:00:00Z'));
    assert.equal(b.postClose, iso('2026-11-27T22:00:00Z'));
    assert.equal(cal.sessionAt(b.close - 1), 'regular');
    assert.equal(cal.sessionAt(b.close), 'post');
    assert.equal(cal.sessionAt(b.postClose - 1), 'post');
    assert.equal(cal.sessionAt(b.postClose), 'closed');
    assert.equal(cal.sessionAt(iso('2026-11-27T21:00:00Z')), 'post', '16:00 is still after hours');
  });

  test('nextOpen and nextClose skip weekends and holidays and are strictly after the given instant', () => {
    // Thursday 2026-04-02 after the close -> Good Friday -> Monday 2026-04-06.
    assert.equal(cal.nextOpen(iso('2026-04-02T20:30:00Z')), iso('2026-04-06T13:30:00Z'));
    assert.equal(cal.nextClose(iso('2026-04-02T20:30:00Z')), iso('2026-04-06T20:00:00Z'));
    const open = cal.sessionBounds('2026-01-06')!.open;
    assert.equal(cal.nextOpen(open - 1), open);
    assert.equal(cal.nextOpen(open), cal.sessionBounds('2026-01-07')!.open);
    assert.equal(cal.nextClose(open), cal.sessionBounds('2026-01-06')!.close);
    assert.equal(cal.nextClose(iso('2026-11-27T15:00:00Z')), iso('2026-11-27T18:00:00Z'));
  });

  test('previous and next trading days step over closures', () => {
    assert.equal(cal.nextTradingDay('2025-01-08'), '2025-01-10');
    assert.equal(cal.previousTradingDay('2025-01-10'), '2025-01-08');
    assert.equal(cal.nextTradingDay('2026-04-02'), '2026-04-06');
    assert.equal(cal.previousTradingDay('2026-04-06'), '2026-04-02');
    assert.equal(cal.nextTradingDay('2027-12-23'), '2027-12-27');
    assert.equal(cal.nextTradingDay('2027-12-30'), '2027-12-31');
    assert.equal(cal.previousTradingDay(iso('2026-01-05T15:00:00Z')), '2026-01-02');
  });

  test('wallTime gives New York clock times on either side of a switch', () => {
    assert.equal(cal.wallTime('2026-03-08', 4), iso('2026-03-08T08:00:00Z'));
    assert.equal(cal.wallTime('2026-03-08', 1, 30), iso('2026-03-08T06:30:00Z'));
    assert.equal(cal.wallTime('2026-11-01', 4), iso('2026-11-01T09:00:00Z'));
  });
});
