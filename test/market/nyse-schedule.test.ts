/**
 * The calendar against the NYSE's published schedule 2001-2030 (test/market/fixtures), day by day:
 * every date's trading/closed answer, its early close and its session edges.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { NYSE_SCHEDULE } from './fixtures/nyse-2001-2030.ts';

const cal = new MarketCalendar();
const DAY = 86_400_000;

function nyWallClock(ts: number): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(ts);
}

test('every day from 2001 to 2030 is open, closed or closes at 13:00 exactly as the NYSE published', () => {
  const differences: string[] = [];
  let tradingDays = 0;
  for (let year = 2001; year <= 2030; year++) {
    const { closed, early } = NYSE_SCHEDULE[year];
    for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += DAY) {
      const date = new Date(t).toISOString().slice(0, 10);
      const wd = new Date(t).getUTCDay();
      const md = date.slice(5);
      const expectTrading = wd !== 0 && wd !== 6 && !closed.includes(md);
      const expectEarly = early.includes(md);
      if (cal.isTradingDay(date) !== expectTrading) differences.push(`${date}: trading ${cal.isTradingDay(date)}, NYSE ${expectTrading}`);
      if (cal.isEarlyClose(date) !== expectEarly) differences.push(`${date}: early close ${cal.isEarlyClose(date)}, NYSE ${expectEarly}`);
      if (expectTrading) tradingDays++;
    }
  }
  assert.deepEqual(differences, []);
  // Sanity on the table itself: about 252 trading days a year.
  assert.ok(tradingDays > 30 * 248 && tradingDays < 30 * 254, `${tradingDays} trading days`);
});

test('the table lists only weekdays, and every closed weekday has a name in the calendar', () => {
  for (let year = 2001; year <= 2030; year++) {
    for (const md of [...NYSE_SCHEDULE[year].closed, ...NYSE_SCHEDULE[year].early]) {
      const wd = new Date(`${year}-${md}T12:00:00Z`).getUTCDay();
      assert.ok(wd >= 1 && wd <= 5, `${year}-${md} is a weekday`);
    }
    for (const md of NYSE_SCHEDULE[year].closed) assert.ok(cal.holiday(`${year}-${md}`), `${year}-${md} has a closure name`);
    assert.deepEqual(
      cal
        .holidays(year)
        .map((h) => h.date.slice(5))
        .filter((md) => {
          const wd = new Date(`${year}-${md}T12:00:00Z`).getUTCDay();
          return wd !== 0 && wd !== 6;
        }),
      [...NYSE_SCHEDULE[year].closed],
      `holidays(${year})`,
    );
  }
});

test('early-close days of 2001-2030 end the regular session at 13:00 and after hours at 17:00 New York time', () => {
  for (let year = 2001; year <= 2030; year++) {
    for (const md of NYSE_SCHEDULE[year].early) {
      const b = cal.sessionBounds(`${year}-${md}`);
      assert.ok(b, `${year}-${md} trades`);
      assert.equal(nyWallClock(b.open), '09:30');
      assert.equal(nyWallClock(b.close), '13:00', `${year}-${md} close`);
      assert.equal(nyWallClock(b.postClose), '17:00');
    }
  }
});
