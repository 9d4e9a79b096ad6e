/**
 * Reads every date format TWS sends (docs/tws-protocol.md: Connecting, Historical data):
 * - epoch seconds: `1736951400` (formatDate=2, intraday)
 * - `yyyyMMdd`: daily and longer bars, even with formatDate=2; midnight New York time
 * - `yyyyMMdd HH:mm:ss <zone>`: TWS 10.17+, zone as an IANA name (`US/Eastern`,
 *   `America/New_York`), an abbreviation (`EST`, `EDT`, `UTC`, `GMT`, ...) or a long Windows/Java
 *   name with spaces (`British Summer Time`, `Greenwich Mean Time`, ...)
 * - `yyyyMMdd-HH:mm:ss`: UTC (the TWS API setting that sends UTC)
 * - `yyyyMMdd  HH:mm:ss` (two spaces) or one space and no zone: older TWS, New York local time
 *
 * Design decision: an abbreviation means its fixed offset (EST is always UTC-5, as in Java);
 * a region name follows daylight saving. Unknown zones are refused, never guessed.
 */
import { DateTime } from 'luxon';
import { MARKET_ZONE } from '../../market/calendar.ts';
import { IbkrError } from './errors.ts';

/** Zone names with a fixed offset from UTC, in minutes. */
const FIXED_OFFSET_MIN: Record<string, number> = {
  UTC: 0,
  GMT: 0,
  Z: 0,
  'Coordinated Universal Time': 0,
  'Greenwich Mean Time': 0,
  EST: -300,
  EDT: -240,
  'Eastern Standard Time': -300,
  'Eastern Daylight Time': -240,
  CST: -360,
  CDT: -300,
  'Central Standard Time': -360,
  'Central Daylight Time': -300,
  MST: -420,
  MDT: -360,
  'Mountain Standard Time': -420,
  'Mountain Daylight Time': -360,
  PST: -480,
  PDT: -420,
  'Pacific Standard Time': -480,
  'Pacific Daylight Time': -420,
  BST: 60,
  'British Summer Time': 60,
  CET: 60,
  CEST: 120,
  'Central European Time': 60,
  'Central European Standard Time': 60,
  'Central European Summer Time': 120,
  MET: 60,
  MEST: 120,
  EET: 120,
  EEST: 180,
  'Eastern European Time': 120,
  'Eastern European Summer Time': 180,
  HKT: 480,
  'Hong Kong Time': 480,
  'Hong Kong Standard Time': 480,
  SGT: 480,
  'Singapore Time': 480,
  'Singapore Standard Time': 480,
  'China Standard Time': 480,
  JST: 540,
  'Japan Standard Time': 540,
  IST: 330,
  'India Standard Time': 330,
  AEST: 600,
  AEDT: 660,
  'Australian Eastern Standard Time': 600,
  'Australian Eastern Daylight Time': 660,
};

const DATE_ONLY = /^(\d{4})(\d{2})(\d{2})$/;
const UTC_DASH = /^(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2})(?::(\d{2}))?$/;
const WITH_TIME = /^(\d{4})(\d{2})(\d{2})( {1,2})(\d{2}):(\d{2})(?::(\d{2}))?(?: +(.+))?$/;
const EPOCH_SECONDS = /^\d{9,11}$/;

function bad(text: string, why: string): IbkrError {
  return new IbkrError('IBKR_BAD_DATE', `cannot read TWS date ${JSON.stringify(text)}: ${why}`);
}

function inZone(text: string, zone: string, y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const dt = DateTime.fromObject({ year: y, month: mo, day: d, hour: h, minute: mi, second: s }, { zone });
  if (!dt.isValid) throw bad(text, `${dt.invalidExplanation ?? dt.invalidReason ?? 'invalid'}`);
  return dt.toMillis();
}

function checkFields(text: string, mo: number, d: number, h: number, mi: number, s: number): void {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) throw bad(text, 'a field is out of range');
}

/** Epoch milliseconds (UTC) of a date string from TWS. Throws IbkrError IBKR_BAD_DATE. */
export function parseTwsDate(input: string): number {
  const text = input.trim();
  if (EPOCH_SECONDS.test(text)) return Number(text) * 1000;
  let m = DATE_ONLY.exec(text);
  if (m) {
    checkFields(text, +m[2], +m[3], 0, 0, 0);
    return inZone(text, MARKET_ZONE, +m[1], +m[2], +m[3], 0, 0, 0);
  }
  m = UTC_DASH.exec(text);
  if (m) {
    const [y, mo, d, h, mi, s] = [+m[1], +m[2], +m[3], +m[4], +m[5], +(m[6] ?? 0)];
    checkFields(text, mo, d, h, mi, s);
    return Date.UTC(y, mo - 1, d, h, mi, s);
  }
  m = WITH_TIME.exec(text);
  if (!m) throw bad(text, 'matches no TWS date format');
  const [y, mo, d, h, mi, s] = [+m[1], +m[2], +m[3], +m[5], +m[6], +(m[7] ?? 0)];
  checkFields(text, mo, d, h, mi, s);
  const zone = m[8]?.trim();
  if (!zone) return inZone(text, MARKET_ZONE, y, mo, d, h, mi, s);
  const fixed = FIXED_OFFSET_MIN[zone];
  if (fixed !== undefined) return Date.UTC(y, mo - 1, d, h, mi, s) - fixed * 60_000;
  if (zone.includes('/')) return inZone(text, zone, y, mo, d, h, mi, s);
  throw bad(text, `unknown time zone "${zone}"`);
}

/** `yyyyMMdd-HH:mm:ss` in UTC: the endDateTime form TWS reads without a zone table. */
export function formatTwsUtc(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 19)}`;
}
