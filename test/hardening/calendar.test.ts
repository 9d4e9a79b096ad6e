/**
 * Regression from the hostile campaign (issue 12): "the calendar outside what it knows". Against
 * exchange_calendars' XNYS, 2002-07-03, 2002-07-05 and 2003-12-26 differed, and dates before the
 * rules were right (1990: MLK Day before 1998, other Christmas Eve and Thanksgiving rules) were
 * answered without a word. Expected values below are XNYS's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CalendarError, FIRST_MODELLED_YEAR, MarketCalendar } from '../../src/market/calendar.ts';

const cal = new MarketCalendar();

function earlyCloses(year: number): string[] {
  const out: string[] = [];
  for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += 86_400_000) {
    const d = new Date(t).toISOString().slice(0, 10);
    if (cal.isEarlyClose(d)) out.push(d);
  }
  return out;
}

test('the calendar outside what it knows: 2001-2003 early closes are exactly XNYS (Friday July 5 before 2013, the 2003 one-off)', () => {
  assert.deepEqual(earlyCloses(2001), ['2001-07-03', '2001-11-23', '2001-12-24']);
  assert.deepEqual(earlyCloses(2002), ['2002-07-05', '2002-11-29', '2002-12-24']);
  assert.deepEqual(earlyCloses(2003), ['2003-07-03', '2003-11-28', '2003-12-24', '2003-12-26']);
  assert.equal(cal.sessionBounds('2002-07-03')?.earlyClose, false, 'a Wednesday July 3 before 2013 is a full day');
  assert.equal(cal.isEarlyClose('2013-07-03'), true, 'a Wednesday July 3 from 2013 closes early');
  assert.equal(cal.isEarlyClose('2019-07-03'), true);
  assert.equal(cal.isEarlyClose('2019-07-05'), false, 'no Friday July 5 early close from 2013');
  assert.equal(cal.isEarlyClose('2008-07-03'), true);
});

test('the calendar outside what it knows: dates before the first modelled year are refused or flagged, never answered silently', () => {
  assert.equal(FIRST_MODELLED_YEAR, 2001);
  assert.equal(cal.isModelled('2001-01-02'), true);
  assert.equal(cal.isModelled('1990-01-15'), false);
  assert.throws(
    () => cal.assertModelled('1990-01-15'),
    (e: unknown) => e instanceof CalendarError && e.code === 'CALENDAR_OUT_OF_RANGE' && /modelled from 2001/.test(e.message),
  );
  assert.throws(
    () => cal.holidays(1990),
    (e: unknown) => e instanceof CalendarError && e.code === 'CALENDAR_OUT_OF_RANGE',
  );
  assert.equal(cal.sessionBounds('1990-01-16')?.modelled, false, 'an answer for 1990 says it is not modelled');
  assert.equal(cal.sessionBounds('2026-01-16')?.modelled, undefined);
  assert.equal(cal.holidays(2001)[0].date, '2001-01-01');
});
