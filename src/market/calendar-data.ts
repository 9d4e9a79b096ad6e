/**
 * The NYSE's full-day holidays and 13:00 early closes, computed by rule (docs/market-data.md, "The NYSE calendar"),
 * plus the table of unscheduled closures that no rule can produce.
 *
 * Dates here are civil days with no time zone: a day number counts days since 1970-01-01, and a
 * date string is `YYYY-MM-DD`. MarketCalendar (calendar.ts) ties them to America/New_York.
 *
 * Range: exact (against exchange_calendars' XNYS) from 2001 on. Juneteenth starts in 2022 and the
 * Wednesday July 3 early close in 2013, as they did at the NYSE; before 2013 a Thursday July 4 gave
 * an early close on Friday July 5 instead. Earlier history (MLK Day before 1998, other Christmas
 * Eve and Thanksgiving rules, ad-hoc closures before 2001) is not modelled: MarketCalendar
 * refuses dates before FIRST_MODELLED_YEAR rather than answering wrongly.
 */

/** The first year the rules and tables here are exact for. */
export const FIRST_MODELLED_YEAR = 2001;

/** One-off 13:00 closes no rule produces. */
export const UNSCHEDULED_EARLY_CLOSES: Readonly<Record<string, string>> = {
  '2003-12-26': 'Friday after Christmas (one-off early close)',
};

/**
 * Closures announced at short notice (days of mourning, emergencies). Add new ones here, or pass
 * them to MarketCalendar's `extraClosures` until the next release.
 */
export const UNSCHEDULED_CLOSURES: Readonly<Record<string, string>> = {
  '2001-09-11': 'September 11 attacks',
  '2001-09-12': 'September 11 attacks',
  '2001-09-13': 'September 11 attacks',
  '2001-09-14': 'September 11 attacks',
  '2004-06-11': 'National Day of Mourning (President Reagan)',
  '2007-01-02': 'National Day of Mourning (President Ford)',
  '2012-10-29': 'Hurricane Sandy',
  '2012-10-30': 'Hurricane Sandy',
  '2018-12-05': 'National Day of Mourning (President G.H.W. Bush)',
  '2025-01-09': 'National Day of Mourning (President Carter)',
};

const JUNETEENTH_FIRST_YEAR = 2022;

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** [year, month 1-12, day] of a day number. */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** 0 = Sunday ... 6 = Saturday. */
export function weekday(days: number): number {
  return (((days + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
}

export function formatDay(days: number): string {
  const [y, m, d] = civilFromDays(days);
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Day number of a `YYYY-MM-DD` string, or undefined when it is not a real date. */
export function parseDay(date: string): number | undefined {
  const m = DATE_RE.exec(date);
  if (!m) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const days = daysFromCivil(y, mo, d);
  const [y2, mo2, d2] = civilFromDays(days);
  return y2 === y && mo2 === mo && d2 === d ? days : undefined; // refuses 2026-02-30
}

/** Easter Sunday (anonymous Gregorian / Meeus algorithm) as a day number. */
export function easterSunday(year: number): number {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return daysFromCivil(year, month, day);
}

/** The nth (1-based) given weekday of a month; n = -1 for the last one. */
function nthWeekday(year: number, month: number, wd: number, n: number): number {
  if (n > 0) {
    const first = daysFromCivil(year, month, 1);
    return first + ((wd - weekday(first) + 7) % 7) + (n - 1) * 7;
  }
  const last = daysFromCivil(month === 12 ? year + 1 : year, month === 12 ? 1 : month + 1, 1) - 1;
  return last - ((weekday(last) - wd + 7) % 7);
}

const MON = 1;
const THU = 4;
const SAT = 6;
const SUN = 0;

/**
 * Observed date of a fixed-date holiday: Sunday moves to Monday, Saturday to Friday. With
 * `saturdayObserved` false (New Year's Day) a Saturday holiday is not observed at all, because
 * the Friday before ends the accounting year.
 */
function observed(days: number, saturdayObserved = true): { days: number; moved: boolean } | undefined {
  const wd = weekday(days);
  if (wd === SUN) return { days: days + 1, moved: true };
  if (wd === SAT) return saturdayObserved ? { days: days - 1, moved: true } : undefined;
  return { days, moved: false };
}

export interface YearRules {
  /** Full-day holidays by rule: day number to name. Unscheduled closures are not in here. */
  holidays: Map<number, string>;
  /** Candidate 13:00 closes (Jul 3, day after Thanksgiving, Dec 24) before checking they trade. */
  earlyCandidates: number[];
}

/** The year's holidays and early-close candidates by the rules of 3.2. */
export function yearRules(year: number): YearRules {
  const holidays = new Map<number, string>();
  const fixed = (month: number, day: number, name: string, saturdayObserved = true) => {
    const o = observed(daysFromCivil(year, month, day), saturdayObserved);
    if (o) holidays.set(o.days, o.moved ? `${name} (observed)` : name);
  };
  fixed(1, 1, "New Year's Day", false);
  holidays.set(nthWeekday(year, 1, MON, 3), 'Martin Luther King Jr. Day');
  holidays.set(nthWeekday(year, 2, MON, 3), "Washington's Birthday");
  holidays.set(easterSunday(year) - 2, 'Good Friday');
  holidays.set(nthWeekday(year, 5, MON, -1), 'Memorial Day');
  if (year >= JUNETEENTH_FIRST_YEAR) fixed(6, 19, 'Juneteenth');
  fixed(7, 4, 'Independence Day');
  holidays.set(nthWeekday(year, 9, MON, 1), 'Labor Day');
  const thanksgiving = nthWeekday(year, 11, THU, 4);
  holidays.set(thanksgiving, 'Thanksgiving Day');
  fixed(12, 25, 'Christmas Day');
  // Dec 24 closes early only Mon-Thu (on a Friday it is the observed holiday anyway). Jul 3 closes
  // early on Mon, Tue and Thu, and on a Wednesday only since 2013; before 2013 a Thursday Jul 4
  // gave the early close to Friday Jul 5 instead.
  const monToThu = (d: number) => weekday(d) >= MON && weekday(d) <= THU;
  const jul3 = daysFromCivil(year, 7, 3);
  const jul3Early = monToThu(jul3) && (weekday(jul3) !== 3 || year >= 2013);
  const jul5 = daysFromCivil(year, 7, 5);
  const jul5Early = year < 2013 && weekday(jul5) === 5;
  const earlyCandidates = [...(jul3Early ? [jul3] : []), ...(jul5Early ? [jul5] : []), thanksgiving + 1];
  if (monToThu(daysFromCivil(year, 12, 24))) earlyCandidates.push(daysFromCivil(year, 12, 24));
  for (const date of Object.keys(UNSCHEDULED_EARLY_CLOSES)) {
    const d = parseDay(date)!;
    if (civilFromDays(d)[0] === year) earlyCandidates.push(d);
  }
  return { holidays, earlyCandidates };
}
