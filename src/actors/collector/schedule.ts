/**
 * When the collector runs a cycle. Pure functions of (now, calendar, config): no timers, no clock.
 * The collector asks `nextCycleAt(clock.now(), ...)`, sleeps until `at`, runs a cycle, and asks again.
 *
 * The cycles of one trading day, with the defaults (New York times, settle 3 s):
 * - 04:00:03 the session-start cycle (reason 'closed': the market was closed until then). It
 *   catches up everything since the previous session's last cycle.
 * - 04:05:03, 04:10:03 ... 09:30:03 pre-market, every offHoursIntervalMs (reason 'extended').
 * - 09:31:03, 09:32:03 ... 16:00:03 regular hours, every marketHoursIntervalMs (reason 'regular'):
 *   one cycle just after each bar closes; the first fetches the 09:30 bar, the last the 15:59 bar.
 *   390 on a normal day, 210 on an early-close day (09:31:03 ... 13:00:03).
 * - 16:05:03 ... 20:00:03 after hours (17:00:03 on an early-close day), reason 'extended'.
 * - Nothing overnight: after the last after-hours cycle it sleeps to the next session start.
 *
 * "On closed days only a catch-up": a weekend day or holiday gets exactly one cycle, at 04:00 New
 * York + settle (when a pre-market would have opened), reason 'closed-day-catch-up'. It picks up
 * what the vendor published late (corrections, the previous session's final bars) and fills gaps.
 * With `closedDayCatchUp: false` closed days get no cycle at all.
 *
 * Grids are anchored at the session edges (04:00, 09:30, close), so intervals that divide the
 * session (the defaults, 30 s, 2 min, 15 min) land on bar boundaries; others simply stop at the
 * last boundary before the session ends, and the next session's cycles pick up the rest.
 * `alwaysOpen` (the simulated 24/7 market): every marketHoursIntervalMs since the epoch + settle.
 */
import type { MarketCalendar } from '../../market/calendar.ts';
import { BarkeepError } from '../../errors.ts';
import type { CollectorErrorCode } from './protocol.ts';

export interface ScheduleConfig {
  /** Cycle spacing in regular hours, ms. Default 60_000 (one cycle per 1-minute bar). */
  marketHoursIntervalMs: number;
  /** Cycle spacing in pre-market and after hours, ms. Default 300_000. */
  offHoursIntervalMs: number;
  /** Wait after a boundary so the vendor has the bar that just closed, ms. Default 3_000. */
  settleMs: number;
  /** One cycle on each weekend day and holiday. Default true. */
  closedDayCatchUp: boolean;
}

export const DEFAULT_SCHEDULE: Readonly<ScheduleConfig> = Object.freeze({
  marketHoursIntervalMs: 60_000,
  offHoursIntervalMs: 300_000,
  settleMs: 3_000,
  closedDayCatchUp: true,
});

export type CycleReason = 'regular' | 'extended' | 'closed-day-catch-up' | 'closed';

export interface NextCycle {
  /** When to run the next cycle, UTC epoch ms; always later than `now`. */
  at: number;
  /**
   * 'regular' / 'extended': the next regular-hours / pre- or after-hours cycle.
   * 'closed-day-catch-up': the one cycle of a weekend day or holiday.
   * 'closed': the market is closed until `at`, the next session's first cycle (pre-market open + settle).
   */
  reason: CycleReason;
}

export class ScheduleError extends BarkeepError<Extract<CollectorErrorCode, 'SCHEDULE_BAD_CONFIG'>> {
  constructor(message: string, field?: string) {
    super('SCHEDULE_BAD_CONFIG', message, field === undefined ? {} : { field });
  }
}

const MAX_SEARCH_DAYS = 31;
const DAY_MS = 86_400_000;

/** Refuses a config the schedule cannot run on, naming the field. */
export function validateScheduleConfig(cfg: ScheduleConfig): void {
  for (const field of ['marketHoursIntervalMs', 'offHoursIntervalMs'] as const) {
    const v = cfg[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new ScheduleError(`${field} must be a positive whole number of ms, got ${String(v)}`);
  }
  const settle = cfg.settleMs;
  if (typeof settle !== 'number' || !Number.isInteger(settle) || settle < 0 || settle >= DAY_MS / 24) {
    throw new ScheduleError(`settleMs must be a whole number of ms from 0 to under an hour, got ${String(settle)}`);
  }
  if (typeof cfg.closedDayCatchUp !== 'boolean') throw new ScheduleError(`closedDayCatchUp must be true or false, got ${String(cfg.closedDayCatchUp)}`);
}

/** The regular session is open at `now` (the status field `is_trading_hours`). */
export function isTradingHours(now: number, cal: MarketCalendar, opts: { alwaysOpen?: boolean } = {}): boolean {
  return opts.alwaysOpen === true || cal.isRegularHours(now);
}

/** The first cycle strictly after `now`. */
export function nextCycleAt(now: number, cal: MarketCalendar, cfg: ScheduleConfig, opts: { alwaysOpen?: boolean } = {}): NextCycle {
  validateScheduleConfig(cfg);
  if (!Number.isFinite(now)) throw new ScheduleError(`now must be epoch ms, got ${String(now)}`);
  const settle = cfg.settleMs;
  if (opts.alwaysOpen) {
    const step = cfg.marketHoursIntervalMs;
    return { at: Math.floor((now - settle) / step) * step + step + settle, reason: 'regular' };
  }
  // Start a day early: a day's last cycle (20:00 + settle) is still that New York day, but a
  // long settle could push it past midnight.
  const firstDay = cal.dayStart(cal.dayStart(now) - 1);
  for (let i = 0, day = firstDay; i <= MAX_SEARCH_DAYS; i++, day = cal.dayStart(day + 36 * 3_600_000)) {
    const found = firstCycleOfDayAfter(now, day, cal, cfg);
    if (found) return found;
  }
  throw new Error(`no collector cycle within ${MAX_SEARCH_DAYS} days after ${now}`);
}

/** The first cycle of the New York day starting at `day` that falls after `now`, if any. */
function firstCycleOfDayAfter(now: number, day: number, cal: MarketCalendar, cfg: ScheduleConfig): NextCycle | undefined {
  const settle = cfg.settleMs;
  const b = cal.sessionBounds(day);
  if (!b) {
    if (!cfg.closedDayCatchUp) return undefined;
    const at = cal.wallTime(day, 4) + settle;
    return at > now ? { at, reason: 'closed-day-catch-up' } : undefined;
  }
  if (b.preOpen + settle > now) return { at: b.preOpen + settle, reason: 'closed' };
  const grids: [number, number, number, CycleReason][] = [
    [b.preOpen, b.open, cfg.offHoursIntervalMs, 'extended'],
    [b.open, b.close, cfg.marketHoursIntervalMs, 'regular'],
    [b.close, b.postClose, cfg.offHoursIntervalMs, 'extended'],
  ];
  for (const [from, to, step, reason] of grids) {
    // Boundaries from + k*step for k >= 1 up to `to`; the first whose cycle is after `now`.
    const k = Math.max(1, Math.floor((now - settle - from) / step) + 1);
    const boundary = from + k * step;
    if (boundary <= to) return { at: boundary + settle, reason };
  }
  return undefined;
}
