/** Date strings as TWS writes and reads them (docs/tws-protocol.md: Connecting, Historical data), for the simulator. */

const NY_PARTS = new Intl.DateTimeFormat('en-US', {
  timeZone: 'America/New_York',
  hourCycle: 'h23',
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});

interface Parts {
  y: string;
  mo: string;
  d: string;
  h: string;
  mi: string;
  s: string;
}

function nyParts(ms: number): Parts {
  const p: Record<string, string> = {};
  for (const x of NY_PARTS.formatToParts(new Date(ms))) p[x.type] = x.value;
  return { y: p.year, mo: p.month, d: p.day, h: p.hour, mi: p.minute, s: p.second };
}

function utcParts(ms: number): Parts {
  const iso = new Date(ms).toISOString();
  return { y: iso.slice(0, 4), mo: iso.slice(5, 7), d: iso.slice(8, 10), h: iso.slice(11, 13), mi: iso.slice(14, 16), s: iso.slice(17, 19) };
}

/** `yyyyMMdd HH:mm:ss US/Eastern` (TWS 10.17+). */
export function formatNyWithZone(ms: number): string {
  const p = nyParts(ms);
  return `${p.y}${p.mo}${p.d} ${p.h}:${p.mi}:${p.s} US/Eastern`;
}

/** `yyyyMMdd  HH:mm:ss` in New York time (older TWS: two spaces, no zone). */
export function formatNyTwoSpace(ms: number): string {
  const p = nyParts(ms);
  return `${p.y}${p.mo}${p.d}  ${p.h}:${p.mi}:${p.s}`;
}

/** `yyyyMMdd-HH:mm:ss` in UTC. */
export function formatUtcDash(ms: number): string {
  const p = utcParts(ms);
  return `${p.y}${p.mo}${p.d}-${p.h}:${p.mi}:${p.s}`;
}

/** `yyyyMMdd` of the New York calendar day. */
export function formatNyDay(ms: number): string {
  const p = nyParts(ms);
  return `${p.y}${p.mo}${p.d}`;
}

/** The connection-time string of the handshake, e.g. `20250115 09:30:00 EST`. */
export function formatConnectionTime(ms: number): string {
  const p = nyParts(ms);
  const offsetH = nyOffsetMinutes(ms) / 60;
  return `${p.y}${p.mo}${p.d} ${p.h}:${p.mi}:${p.s} ${offsetH === -4 ? 'EDT' : 'EST'}`;
}

/** New York's offset from UTC in minutes at `ms` (-300 or -240). */
export function nyOffsetMinutes(ms: number): number {
  const p = nyParts(ms);
  const asUtc = Date.UTC(+p.y, +p.mo - 1, +p.d, +p.h, +p.mi, +p.s);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** Epoch ms of a New York wall-clock time. */
export function nyWallToUtc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number {
  const guess = Date.UTC(y, mo - 1, d, h, mi, s);
  let t = guess - nyOffsetMinutes(guess) * 60_000;
  t = guess - nyOffsetMinutes(t) * 60_000;
  return t;
}

/** Start of the New York day containing `ms`. */
export function nyMidnight(ms: number): number {
  const p = nyParts(ms);
  return nyWallToUtc(+p.y, +p.mo, +p.d);
}

/**
 * Reads a REQ_HISTORICAL_DATA endDateTime: "" (now), `yyyyMMdd-HH:mm:ss` (UTC) or
 * `yyyyMMdd HH:mm:ss <zone>` with zone UTC, GMT, US/Eastern, America/New_York, EST or EDT.
 * Returns undefined when the string is not one of those.
 */
export function parseEndDateTime(text: string, now: number): number | undefined {
  const s = text.trim();
  if (s === '') return now;
  let m = /^(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (m) return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  m = /^(\d{4})(\d{2})(\d{2}) +(\d{2}):(\d{2}):(\d{2})(?: (.+))?$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = [+m[1], +m[2], +m[3], +m[4], +m[5], +m[6]];
  const zone = m[7] ?? 'US/Eastern';
  switch (zone) {
    case 'UTC':
    case 'GMT':
      return Date.UTC(y, mo - 1, d, h, mi, sec);
    case 'US/Eastern':
    case 'America/New_York':
      return nyWallToUtc(y, mo, d, h, mi, sec);
    case 'EST':
      return Date.UTC(y, mo - 1, d, h + 5, mi, sec);
    case 'EDT':
      return Date.UTC(y, mo - 1, d, h + 4, mi, sec);
    default:
      return undefined;
  }
}

/**
 * When IB ends a DAY order placed at `at`: the regular close (16:00 New York, 13:00 on an early
 * close) of the trading day it belongs to (the next one when placed after that close, on a weekend
 * or a holiday); with outsideRth, the end of that day's after-hours session (20:00; 17:00 on an
 * early close). Weekends are closed; holidays and early closes (`YYYY-MM-DD`) are given.
 */
export function dayOrderEnd(at: number, outsideRth: boolean, days: { holidays: ReadonlySet<string>; earlyCloses: ReadonlySet<string> }): number {
  for (let i = 0, ms = at; i < 15; i++, ms = nyMidnight(ms) + 30 * 3_600_000) {
    const p = nyParts(ms);
    const date = `${p.y}-${p.mo}-${p.d}`;
    const weekday = new Date(Date.UTC(+p.y, +p.mo - 1, +p.d)).getUTCDay();
    if (weekday === 0 || weekday === 6 || days.holidays.has(date)) continue;
    const early = days.earlyCloses.has(date);
    const end = nyWallToUtc(+p.y, +p.mo, +p.d, (early ? 13 : 16) + (outsideRth ? 4 : 0));
    if (at < end) return end;
  }
  throw new Error(`no trading day within 15 days after ${new Date(at).toISOString()}`);
}
