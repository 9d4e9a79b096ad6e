/**
 * MarketCalendar: the NYSE's trading days and sessions, in America/New_York.
 *
 * Design decisions:
 * - Pure: no clock inside. Callers pass an instant (UTC epoch ms) or a New York date
 *   (`YYYY-MM-DD`); every answer is a function of that and the constructor's options.
 * - Holidays and early closes come from the rules in calendar-data.ts; closures no rule can give
 *   (days of mourning, storms) come from its UNSCHEDULED_CLOSURES table plus `extraClosures`.
 * - Offsets come from the IANA zone through luxon, never a fixed -5 h. They are looked up once
 *   per year (the instants where New York's offset changes) so that `sessionAt` and `dateOf`
 *   on the hot path are arithmetic plus a small cached day record, not a luxon call.
 *
 * Sessions on a trading day (docs/market-data.md, "The NYSE calendar"), each half-open [start, end):
 *   pre 04:00-09:30, regular 09:30-16:00, post 16:00-20:00;
 *   on an early-close day regular ends 13:00 and post 17:00.
 * Everything else (overnight, weekends, holidays) is 'closed'.
 */
import { IANAZone } from 'luxon';
import { FIRST_MODELLED_YEAR, UNSCHEDULED_CLOSURES, civilFromDays, daysFromCivil, formatDay, parseDay, weekday, yearRules } from './calendar-data.ts';
import { BarkeepError } from '../errors.ts';

export const MARKET_ZONE = 'America/New_York';
export { FIRST_MODELLED_YEAR };
const FIRST_MODELLED_DAY = daysFromCivil(FIRST_MODELLED_YEAR, 1, 1);

export type Session = 'pre' | 'regular' | 'post' | 'closed';

/** A trading day's session edges, UTC epoch ms. */
export interface SessionBounds {
  /** The New York date, `YYYY-MM-DD`. */
  date: string;
  /** Pre-market opens, 04:00. */
  preOpen: number;
  /** Regular session opens, 09:30. */
  open: number;
  /** Regular session closes, 16:00 (13:00 on an early-close day). */
  close: number;
  /** After-hours end, 20:00 (17:00 on an early-close day). */
  postClose: number;
  earlyClose: boolean;
  /** Present (false) on a date before FIRST_MODELLED_YEAR: computed by today's rules, not exact. */
  modelled?: false;
}

export type CalendarErrorCode = 'CALENDAR_BAD_DATE' | 'CALENDAR_BAD_TIME' | 'CALENDAR_OUT_OF_RANGE';

export class CalendarError extends BarkeepError<CalendarErrorCode> {}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** No run of closed days is longer than this (Sep 2001: 4 weekdays plus a weekend). */
const MAX_SEARCH_DAYS = 31;
const DAY_CACHE_LIMIT = 20_000;

const zone = IANAZone.create(MARKET_ZONE);

function zoneOffsetMs(ts: number): number {
  const minutes = zone.offset(ts);
  if (!Number.isFinite(minutes)) throw new CalendarError('CALENDAR_BAD_TIME', `no ${MARKET_ZONE} offset for ${ts}`);
  return minutes * MINUTE;
}

interface YearOffsets {
  first: number;
  /** Instants at which New York's offset changes during the UTC year, with the new offset. */
  changes: { at: number; offset: number }[];
}

// Module-wide: the zone's rules do not depend on a calendar's options.
const yearOffsets = new Map<number, YearOffsets>();

function offsetsOfYear(year: number): YearOffsets {
  let cached = yearOffsets.get(year);
  if (cached) return cached;
  const start = daysFromCivil(year, 1, 1) * DAY;
  const end = daysFromCivil(year + 1, 1, 1) * DAY;
  const first = zoneOffsetMs(start);
  const changes: { at: number; offset: number }[] = [];
  let prev = first;
  // New York changes offset at most once a day: sample daily, then bisect to the millisecond.
  for (let t = start + DAY; t <= end; t += DAY) {
    const o = zoneOffsetMs(t);
    if (o === prev) continue;
    let lo = t - DAY;
    let hi = t;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (zoneOffsetMs(mid) === prev) lo = mid;
      else hi = mid;
    }
    changes.push({ at: hi, offset: o });
    prev = o;
  }
  cached = { first, changes };
  yearOffsets.set(year, cached);
  return cached;
}

/** New York's offset from UTC at instant `ts`, in ms (-4 h under EDT, -5 h under EST). */
export function marketOffsetMs(ts: number): number {
  const { first, changes } = offsetsOfYear(civilFromDays(Math.floor(ts / DAY))[0]);
  let off = first;
  for (const c of changes) if (ts >= c.at) off = c.offset;
  return off;
}

/** Midnight New York of the day containing `ts`, and of the next day (UTC epoch ms): arithmetic on the cached offsets, no luxon call. */
export function marketDayBounds(ts: number): { start: number; end: number } {
  const days = marketDayNumber(ts);
  return { start: localToUtc(days, 0), end: localToUtc(days + 1, 0) };
}

/** Days since 1970-01-01 of the New York date containing instant `ts`. */
function marketDayNumber(ts: number): number {
  return Math.floor((ts + marketOffsetMs(ts)) / DAY);
}

/** The UTC instant of New York wall-clock time `minuteOfDay` on day number `days`. */
function localToUtc(days: number, minuteOfDay: number): number {
  const local = days * DAY + minuteOfDay * MINUTE;
  // Two passes settle on the offset in force at the result (no NYSE time falls in 02:00-03:00).
  return local - marketOffsetMs(local - marketOffsetMs(local));
}

/**
 * The New York day containing instant `ts`: its date, and its midnight and the next one (UTC epoch
 * ms; 23 or 25 hours apart on the days the clocks change). The one place New York midnight is computed.
 */
export function marketDay(ts: number): { date: string; start: number; end: number } {
  return { date: formatDay(marketDayNumber(ts)), ...marketDayBounds(ts) };
}

interface DayRecord {
  days: number;
  date: string;
  /** Midnight New York, UTC epoch ms. */
  start: number;
  trading: boolean;
  closureName?: string;
  bounds?: SessionBounds;
}

export interface MarketCalendarOptions {
  /** More unscheduled full-day closures, `YYYY-MM-DD` (New York). */
  extraClosures?: readonly string[];
}

export class MarketCalendar {
  private readonly closures = new Map<number, string>();
  private readonly years = new Map<number, { holidays: Map<number, string>; early: Set<number> }>();
  private readonly dayCache = new Map<number, DayRecord>();

  constructor(opts: MarketCalendarOptions = {}) {
    for (const [date, name] of Object.entries(UNSCHEDULED_CLOSURES)) this.closures.set(parseDay(date)!, name);
    (opts.extraClosures ?? []).forEach((date, i) => {
      const days = typeof date === 'string' ? parseDay(date) : undefined;
      if (days === undefined) {
        throw new CalendarError('CALENDAR_BAD_DATE', `extraClosures[${i}] must be a YYYY-MM-DD date, got ${JSON.stringify(date)}`);
      }
      if (!this.closures.has(days)) this.closures.set(days, 'Unscheduled closure');
    });
  }

  /** The New York date (`YYYY-MM-DD`) of instant `ts`. */
  dateOf(ts: number): string {
    return this.record(this.dayNumber(ts)).date;
  }

  /** Midnight New York at the start of `date` (or of instant `date`'s New York date). Daily bars start here. */
  dayStart(date: string | number): number {
    return this.record(this.toDay(date)).start;
  }

  /** The instant of New York wall-clock `hour:minute` on `date`, UTC epoch ms. */
  wallTime(date: string | number, hour: number, minute = 0): number {
    const m = hour * 60 + minute;
    if (!Number.isInteger(hour) || !Number.isInteger(minute) || hour < 0 || minute < 0 || m > 24 * 60) {
      throw new CalendarError('CALENDAR_BAD_TIME', `wall time must be between 00:00 and 24:00, got ${hour}:${minute}`);
    }
    return localToUtc(this.toDay(date), m);
  }

  isTradingDay(date: string | number): boolean {
    return this.record(this.toDay(date)).trading;
  }

  /**
   * Name of the full-day closure on `date` (a holiday, "(observed)" when moved, or an
   * unscheduled closure); undefined on trading days and on plain weekends.
   */
  holiday(date: string | number): string | undefined {
    return this.record(this.toDay(date)).closureName;
  }

  /** Full-day closures of a year, by date: rule holidays and unscheduled closures. */
  holidays(year: number): { date: string; name: string }[] {
    if (year < FIRST_MODELLED_YEAR) this.assertModelled(daysFromCivil(year, 12, 31));
    const out = new Map(this.rules(year).holidays);
    for (const [days, name] of this.closures) if (civilFromDays(days)[0] === year && !out.has(days)) out.set(days, name);
    return [...out.entries()].sort((a, b) => a[0] - b[0]).map(([days, name]) => ({ date: formatDay(days), name }));
  }

  /**
   * False for dates before FIRST_MODELLED_YEAR, whose holiday rules differed (MLK Day before 1998,
   * other Christmas Eve and Thanksgiving rules): the answers for them follow today's rules, and
   * sessionBounds flags them with `modelled: false`. Callers that take a date from a person refuse
   * it with assertModelled.
   */
  isModelled(date: string | number): boolean {
    return this.toDay(date) >= FIRST_MODELLED_DAY;
  }

  /** Throws CALENDAR_OUT_OF_RANGE for a date before FIRST_MODELLED_YEAR. */
  assertModelled(date: string | number): void {
    const days = this.toDay(date);
    if (days < FIRST_MODELLED_DAY) {
      throw new CalendarError('CALENDAR_OUT_OF_RANGE', `the NYSE calendar is modelled from ${FIRST_MODELLED_YEAR} on; ${formatDay(days)} is before it (its holiday rules differed)`);
    }
  }

  /** True on a trading day whose regular session ends at 13:00. */
  isEarlyClose(date: string | number): boolean {
    return this.record(this.toDay(date)).bounds?.earlyClose ?? false;
  }

  /** Session edges of a trading day; undefined when the market is closed all day. */
  sessionBounds(date: string | number): SessionBounds | undefined {
    return this.record(this.toDay(date)).bounds;
  }

  sessionAt(ts: number): Session {
    const b = this.record(this.dayNumber(ts)).bounds;
    if (!b || ts < b.preOpen || ts >= b.postClose) return 'closed';
    if (ts < b.open) return 'pre';
    return ts < b.close ? 'regular' : 'post';
  }

  isRegularHours(ts: number): boolean {
    return this.sessionAt(ts) === 'regular';
  }

  /** The first regular-session open strictly after `ts`. */
  nextOpen(ts: number): number {
    return this.nextEdge(ts, (b) => b.open);
  }

  /** The first regular-session close strictly after `ts` (the current session's close during regular hours). */
  nextClose(ts: number): number {
    return this.nextEdge(ts, (b) => b.close);
  }

  /** The last trading day strictly before `date`, `YYYY-MM-DD`. */
  previousTradingDay(date: string | number): string {
    return this.stepTradingDay(this.toDay(date), -1);
  }

  /** The first trading day strictly after `date`, `YYYY-MM-DD`. */
  nextTradingDay(date: string | number): string {
    return this.stepTradingDay(this.toDay(date), 1);
  }

  private nextEdge(ts: number, edge: (b: SessionBounds) => number): number {
    const first = this.dayNumber(ts);
    for (let d = first; d <= first + MAX_SEARCH_DAYS; d++) {
      const b = this.record(d).bounds;
      if (b && edge(b) > ts) return edge(b);
    }
    throw new Error(`no trading day within ${MAX_SEARCH_DAYS} days after ${ts}`);
  }

  private stepTradingDay(from: number, step: 1 | -1): string {
    for (let d = from + step, n = 0; n < MAX_SEARCH_DAYS; d += step, n++) {
      const r = this.record(d);
      if (r.trading) return r.date;
    }
    throw new Error(`no trading day within ${MAX_SEARCH_DAYS} days of ${formatDay(from)}`);
  }

  private dayNumber(ts: number): number {
    if (typeof ts !== 'number' || !Number.isFinite(ts)) {
      throw new CalendarError('CALENDAR_BAD_TIME', `time must be a finite epoch ms number, got ${String(ts)}`);
    }
    return Math.floor((ts + marketOffsetMs(ts)) / DAY);
  }

  private toDay(date: string | number): number {
    if (typeof date === 'number') return this.dayNumber(date);
    const days = typeof date === 'string' ? parseDay(date) : undefined;
    if (days === undefined) {
      throw new CalendarError('CALENDAR_BAD_DATE', `date must be YYYY-MM-DD (New York) or epoch ms, got ${JSON.stringify(date)}`);
    }
    return days;
  }

  private rules(year: number): { holidays: Map<number, string>; early: Set<number> } {
    let r = this.years.get(year);
    if (!r) {
      const { holidays, earlyCandidates } = yearRules(year);
      r = { holidays, early: new Set(earlyCandidates) };
      this.years.set(year, r);
    }
    return r;
  }

  private record(days: number): DayRecord {
    let r = this.dayCache.get(days);
    if (r) return r;

    const rules = this.rules(civilFromDays(days)[0]);
    const wd = weekday(days);
    const closureName = rules.holidays.get(days) ?? this.closures.get(days);
    const trading = wd !== 0 && wd !== 6 && closureName === undefined;
    const date = formatDay(days);
    r = { days, date, start: localToUtc(days, 0), trading, closureName };
    if (trading) {
      const earlyClose = rules.early.has(days);
      r.bounds = Object.freeze({
        date,
        preOpen: localToUtc(days, 4 * 60),
        open: localToUtc(days, 9 * 60 + 30),
        close: localToUtc(days, earlyClose ? 13 * 60 : 16 * 60),
        postClose: localToUtc(days, earlyClose ? 17 * 60 : 20 * 60),
        earlyClose,
        ...(days < FIRST_MODELLED_DAY ? { modelled: false } : {}),
      });
    }
    // Bounded so a long-running process scanning years of history does not grow without limit.
    if (this.dayCache.size >= DAY_CACHE_LIMIT) this.dayCache.clear();
    this.dayCache.set(days, r);
    return r;
  }
}
