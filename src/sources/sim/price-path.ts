/**
 * SimPricePath: the simulated market's prices, a deterministic function of (seed, symbol, time).
 *
 * Design decisions:
 * - The finest grain is the 5-second bar. A minute bar is the aggregate of its twelve 5-second
 *   bars, and longer bars (in SimMarket) aggregate minutes, so every size agrees with every other
 *   and the IBKR simulator's real-time bars sum exactly to the collector's minute bars.
 * - One New York day (midnight to midnight) is computed at once and kept in a small LRU cache.
 *   Its log-price is a Brownian bridge from that day's opening level to the next day's, with
 *   per-minute variance shaped by the session (busy at the open and close, quiet outside hours).
 * - Day opening levels come from a Levy (midpoint-displacement) construction over day numbers
 *   since 1970-01-01: the level of any day costs 16 seeded normals, with no walk from the start of
 *   time and no per-symbol memory. Scales above CAP_DAYS get no more variance than CAP_DAYS, so
 *   a symbol wanders like a random walk over months but stays in a plausible band over decades.
 * - Days keyed by (seed, symbol, day), minutes by (seed, symbol, minute): the same request gives
 *   the same numbers at any time and in any order.
 *
 * Footguns: days outside SIM_FIRST_DAY .. SIM_LAST_DAY (1970-01-01 .. 2149-06-06) have no bars. In 'nyse' mode a closed day has no
 * bars at all and the overnight hours move the price without printing (an opening gap).
 */
import { MarketCalendar } from '../../market/calendar.ts';
import { formatDay, parseDay } from '../../market/calendar-data.ts';
import { LAST_DAY, MINUTE, buildDay, round4, subBars, symbolModel, type DayPath, type PathBar, type SimSession, type SymbolModel } from './day-path.ts';
import { BarkeepError } from '../../errors.ts';

export type { PathBar, SimSession } from './day-path.ts';

export interface SimPricePathOptions {
  seed: number;
  calendar?: MarketCalendar;
  /** 'always': a 24/7 market (the built-in demo). 'nyse': bars only in NYSE sessions. Default 'always'. */
  session?: SimSession;
  /** Days kept in the LRU cache (per symbol and day). Default 64. */
  cacheDays?: number;
}

const DAY_BAR_CACHE = 16_384;

/** First and last New York dates that can hold simulated bars. */
export const SIM_FIRST_DAY = formatDay(0);
export const SIM_LAST_DAY = formatDay(LAST_DAY - 1);

export class SimPathError extends BarkeepError<'SIM_BAD_INPUT'> {
  constructor(message: string) {
    super('SIM_BAD_INPUT', message);
  }
}

/** Aggregates bars (oldest first, at least one) into one starting at `start`; vwap volume-weighted. */
export function aggregatePathBars(bars: readonly PathBar[], start: number): PathBar {
  let high = -Infinity;
  let low = Infinity;
  let volume = 0;
  let trades = 0;
  let notional = 0;
  for (const b of bars) {
    if (b.high > high) high = b.high;
    if (b.low < low) low = b.low;
    volume += b.volume;
    trades += b.trades;
    notional += b.vwap * b.volume;
  }
  const close = bars[bars.length - 1].close;
  const vwap = volume > 0 ? Math.min(high, Math.max(low, round4(notional / volume))) : close;
  return { start, open: bars[0].open, high, low, close, volume, vwap, trades };
}

export class SimPricePath {
  readonly session: SimSession;
  readonly calendar: MarketCalendar;
  private readonly seed: number;
  private readonly cacheDays: number;
  private readonly models = new Map<string, SymbolModel>();
  private readonly days = new Map<string, DayPath | null>();
  private readonly dayBars = new Map<string, PathBar | null>();

  constructor(opts: SimPricePathOptions) {
    if (!Number.isSafeInteger(opts.seed)) throw new SimPathError(`seed must be a safe integer, got ${String(opts.seed)}`);
    const session = opts.session ?? 'always';
    if (session !== 'always' && session !== 'nyse') throw new SimPathError(`session must be 'always' or 'nyse', got ${String(session)}`);
    const cacheDays = opts.cacheDays ?? 64;
    if (!Number.isInteger(cacheDays) || cacheDays < 1) throw new SimPathError(`cacheDays must be a positive integer, got ${String(cacheDays)}`);
    this.seed = opts.seed;
    this.session = session;
    this.calendar = opts.calendar ?? new MarketCalendar();
    this.cacheDays = cacheDays;
  }

  /** The minute bar starting at `start` (a whole minute), or undefined when that minute had no trades. */
  minuteBar(symbol: string, start: number): PathBar | undefined {
    const at = this.locate(symbol, start);
    return at && at.path.bars[at.i];
  }

  /**
   * The twelve 5-second bars of the minute starting at `minuteStart`; they aggregate exactly to
   * `minuteBar` (5-second bars with no trades have volume 0 and vwap = close). Empty when the
   * minute is outside the simulated market's sessions.
   */
  fiveSecondBars(symbol: string, minuteStart: number): PathBar[] {
    const at = this.locate(symbol, minuteStart);
    if (!at || !at.path.active[at.i]) return [];
    return subBars(this.model(symbol), at.path, at.i);
  }

  /**
   * The whole New York day's bar (midnight to midnight, the aggregate of its minute bars), or
   * undefined when the day had no trades. Cached apart from the minute paths, so a long run of
   * daily bars costs each day's minute path once.
   */
  dayBar(symbol: string, date: string | number): PathBar | undefined {
    this.model(symbol);
    const d = this.calendar.dateOf(this.calendar.dayStart(date));
    const key = `${symbol}\u0000${d}`;
    const hit = this.dayBars.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const day = parseDay(d)!;
    const start = this.calendar.dayStart(d);
    const minutes = this.minuteBars(symbol, start, this.calendar.dayStart(formatDay(day + 1)));
    const bar = minutes.length > 0 ? Object.freeze(aggregatePathBars(minutes, start)) : null;
    if (this.dayBars.size >= DAY_BAR_CACHE) this.dayBars.delete(this.dayBars.keys().next().value!);
    this.dayBars.set(key, bar);
    return bar ?? undefined;
  }

  /** Minute bars with from <= start < to, oldest first. Minutes with no trades have no bar. */
  minuteBars(symbol: string, from: number, to: number): PathBar[] {
    const out: PathBar[] = [];
    this.forEachMinuteBar(symbol, from, to, (b) => out.push(b));
    return out;
  }

  /** Calls `fn` with each minute bar with from <= start < to, oldest first, without building an array. */
  forEachMinuteBar(symbol: string, from: number, to: number, fn: (bar: PathBar) => void): void {
    this.model(symbol); // validates the symbol even for an empty range
    const first = parseDay(SIM_FIRST_DAY)!;
    const last = parseDay(SIM_LAST_DAY)!;
    const lo = Math.max(from, this.calendar.dayStart(SIM_FIRST_DAY));
    const hi = Math.min(to, this.calendar.dayStart(formatDay(last + 1)));
    if (!(lo < hi)) return;
    for (let day = Math.max(first, parseDay(this.calendar.dateOf(lo))!); day <= last; day++) {
      if (this.calendar.dayStart(formatDay(day)) >= hi) return;
      const path = this.dayPath(symbol, day);
      if (!path) continue;
      const i0 = Math.max(0, Math.ceil((lo - path.start) / MINUTE));
      const i1 = Math.min(path.minutes, Math.ceil((hi - path.start) / MINUTE));
      for (let i = i0; i < i1; i++) {
        const bar = path.bars[i];
        if (bar) fn(bar);
      }
    }
  }

  private locate(symbol: string, start: number): { path: DayPath; i: number } | undefined {
    if (!Number.isFinite(start) || start % MINUTE !== 0) {
      throw new SimPathError(`start must be a whole minute in epoch ms, got ${String(start)}`);
    }
    this.model(symbol);
    if (start < this.calendar.dayStart(SIM_FIRST_DAY) || start >= this.calendar.dayStart(formatDay(LAST_DAY))) return undefined;
    const day = parseDay(this.calendar.dateOf(start))!;
    const path = this.dayPath(symbol, day);
    return path ? { path, i: (start - path.start) / MINUTE } : undefined;
  }

  private model(symbol: string): SymbolModel {
    let m = this.models.get(symbol);
    if (m) return m;
    if (typeof symbol !== 'string' || symbol.length === 0) throw new SimPathError('symbol must be a non-empty string');
    m = symbolModel(symbol, this.seed);
    this.models.set(symbol, m);
    return m;
  }

  private dayPath(symbol: string, day: number): DayPath | null {
    const key = `${symbol}\u0000${day}`;
    const hit = this.days.get(key);
    if (hit !== undefined) {
      this.days.delete(key); // LRU: re-insert as newest
      this.days.set(key, hit);
      return hit;
    }
    const path = buildDay(this.model(symbol), day, this.calendar, this.session);
    if (this.days.size >= this.cacheDays) this.days.delete(this.days.keys().next().value!);
    this.days.set(key, path);
    return path;
  }
}
