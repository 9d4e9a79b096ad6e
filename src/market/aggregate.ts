/**
 * Builds bars of one BarSize out of 5-second bars (IBKR `reqRealTimeBars`).
 *
 * Design decisions:
 * - Pure and timer-free: the caller pushes 5 s bars and calls `flush(now)` on its own clock, so the
 *   same code runs live, accelerated and in replay.
 * - A bar is complete when the 5 s bar that ends its interval arrives (start = intervalEnd - 5000),
 *   when a 5 s bar of a later interval arrives, or when `flush(now)` runs at or after
 *   intervalEnd + grace. Whatever completes it, a bar is emitted once.
 * - A 5 s bar for an interval that was already emitted is late: it is dropped and counted, never
 *   used to re-emit a bar (downstream already acted on the first one).
 * - A 5 s bar seen twice (a resubscription repeats the last completed 5 s bar) is dropped and counted.
 *
 * Footgun: daily bars start at midnight New York time and the 5 s bar that would end them never
 * comes (the market closes hours before), so a `1Day` bar completes only through `flush`.
 */
import type { Bar, BarSource, Ohlcv } from './bar.ts';
import { barSizeMs, floorToBar, type BarSize } from './bar-size.ts';
import { marketDay } from './calendar.ts';

export const FIVE_SECONDS_MS = 5_000;

/** One 5-second bar as IBKR sends it, with `start` in UTC epoch ms. */
export interface FiveSecondBar extends Ohlcv {
  /** Volume-weighted average price of the 5 s bar; NaN when unknown. */
  wap: number;
  /** Trade count; -1 when unknown. */
  count: number;
}

export interface BarAggregatorOptions {
  symbol: string;
  barSize: BarSize;
  source: BarSource;
  /** How long past an interval's end `flush` waits for its last 5 s bar. Default 2000 ms. */
  graceMs?: number;
}

export interface BarAggregatorStats {
  accepted: number;
  late: number;
  duplicates: number;
  emitted: number;
}

interface OpenInterval {
  start: number;
  end: number;
  firstFive: number;
  lastFive: number;
  seen: Set<number>;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  wapVolume: number;
  /** Volume of the 5 s bars that had a wap: the weight of `wapVolume`. */
  wapWeight: number;
  trades: number;
}

function intervalOf(ts: number, size: BarSize): { start: number; end: number } {
  if (size === '1Day') {
    const { start, end } = marketDay(ts);
    return { start, end };
  }
  const start = floorToBar(ts, size);
  return { start, end: start + barSizeMs(size) };
}

export class BarAggregator {
  readonly symbol: string;
  readonly barSize: BarSize;
  readonly source: BarSource;
  readonly graceMs: number;
  private current: OpenInterval | null = null;
  /** End of the newest interval already emitted: 5 s bars starting before it are late. */
  private emittedUntil = Number.NEGATIVE_INFINITY;
  private readonly counters: BarAggregatorStats = { accepted: 0, late: 0, duplicates: 0, emitted: 0 };

  constructor(opts: BarAggregatorOptions) {
    if (opts.graceMs !== undefined && !(opts.graceMs >= 0)) {
      throw new RangeError(`graceMs must be a number >= 0, got ${String(opts.graceMs)}`);
    }
    this.symbol = opts.symbol;
    this.barSize = opts.barSize;
    this.source = opts.source;
    this.graceMs = opts.graceMs ?? 2_000;
  }

  /**
   * Adds one 5 s bar. Returns the bars it completed (zero, one, or two when it both closes an
   * interval whose last 5 s bar never came and ends its own interval).
   */
  push(five: FiveSecondBar, receivedAt: number): Bar[] {
    if (five.start < this.emittedUntil) {
      this.counters.late++;
      return [];
    }
    const out: Bar[] = [];
    const { start, end } = intervalOf(five.start, this.barSize);
    let cur = this.current;
    if (cur && start !== cur.start) {
      if (start < cur.start) {
        // An earlier interval that never opened: its bar would come out after a newer one.
        this.counters.late++;
        return [];
      }
      out.push(this.emit(cur, receivedAt));
      cur = null;
    }
    if (!cur) {
      cur = {
        start,
        end,
        firstFive: five.start,
        lastFive: five.start,
        seen: new Set(),
        open: five.open,
        high: five.high,
        low: five.low,
        close: five.close,
        volume: 0,
        wapVolume: 0,
        wapWeight: 0,
        trades: 0,
      };
      this.current = cur;
    }
    if (cur.seen.has(five.start)) {
      this.counters.duplicates++;
      return out;
    }
    cur.seen.add(five.start);
    this.counters.accepted++;
    if (five.start < cur.firstFive) {
      cur.firstFive = five.start;
      cur.open = five.open;
    }
    if (five.start >= cur.lastFive) {
      cur.lastFive = five.start;
      cur.close = five.close;
    }
    cur.high = Math.max(cur.high, five.high);
    cur.low = Math.min(cur.low, five.low);
    cur.volume += five.volume;
    if (five.volume > 0 && Number.isFinite(five.wap)) {
      cur.wapVolume += five.wap * five.volume;
      cur.wapWeight += five.volume;
    }
    cur.trades = cur.trades < 0 || five.count < 0 ? -1 : cur.trades + five.count;
    if (five.start + FIVE_SECONDS_MS >= cur.end) out.push(this.emit(cur, receivedAt));
    return out;
  }

  /** Emits the open interval when `now` is at least its end plus the grace. */
  flush(now: number): Bar[] {
    const cur = this.current;
    if (cur && now >= cur.end + this.graceMs) return [this.emit(cur, now)];
    return [];
  }

  /** Start of the interval still being built, if any. */
  pendingStart(): number | undefined {
    return this.current?.start;
  }

  stats(): BarAggregatorStats {
    return { ...this.counters };
  }

  private emit(cur: OpenInterval, receivedAt: number): Bar {
    this.current = null;
    this.emittedUntil = cur.end;
    this.counters.emitted++;
    return {
      symbol: this.symbol,
      barSize: this.barSize,
      start: cur.start,
      open: cur.open,
      high: cur.high,
      low: cur.low,
      close: cur.close,
      volume: cur.volume,
      vwap: cur.wapWeight > 0 ? cur.wapVolume / cur.wapWeight : Number.NaN,
      trades: cur.trades,
      source: this.source,
      receivedAt,
    };
  }
}

// ---- rolling bars of one size up into a larger size (the collector's rollup) ---------------------

/** Whether bars of `higher` can be built from cached bars of `lower` (a strict multiple, or 1Day from any intraday size). */
export function canRollUp(lower: BarSize, higher: BarSize): boolean {
  if (lower === higher || lower === '1Day') return false;
  if (higher === '1Day') return true;
  const l = barSizeMs(lower);
  const h = barSizeMs(higher);
  return h > l && h % l === 0;
}

/** The larger bar a smaller one belongs to: keyed by `start`, made of the smaller bars in [from, end). */
export interface RollupBucket {
  start: number;
  from: number;
  end: number;
}

/** What rollupBucket needs of the calendar (MarketCalendar). */
export interface SessionCalendar {
  dateOf(ts: number): string;
  dayStart(date: string | number): number;
  wallTime(date: string | number, hour: number, minute?: number): number;
  sessionBounds(date: string | number): { open: number; close: number; postClose: number } | undefined;
}

/**
 * The `higher` bar that the smaller bar starting at `ts` belongs to, on NYSE session boundaries
 * (docs/market-data.md): intraday buckets align to the clock (:00, :05, ...) and never span the
 * regular open, the close (13:00 on an early close) or the end of after hours, so a bucket cut by
 * one of them ends (or starts) there. A `1Day` bar starts at midnight New York and is made of the
 * regular session's bars; bars outside it belong to no daily bar (undefined). With `alwaysOpen`
 * (the simulated 24/7 market) there are no session edges and a day is the whole New York day.
 */
export function rollupBucket(ts: number, higher: BarSize, calendar: SessionCalendar, alwaysOpen: boolean): RollupBucket | undefined {
  if (higher === '1Day') {
    const date = calendar.dateOf(ts);
    const dayStart = calendar.dayStart(date);
    if (alwaysOpen) return { start: dayStart, from: dayStart, end: calendar.wallTime(date, 24) };
    const b = calendar.sessionBounds(date);
    if (!b || ts < b.open || ts >= b.close) return undefined;
    return { start: dayStart, from: b.open, end: b.close };
  }
  let start = floorToBar(ts, higher);
  let end = start + barSizeMs(higher);
  if (!alwaysOpen) {
    const b = calendar.sessionBounds(calendar.dateOf(ts));
    if (b) {
      for (const edge of [b.open, b.close, b.postClose]) {
        if (!(start < edge && edge < end)) continue;
        if (ts < edge) end = edge;
        else start = edge;
      }
    }
  }
  return { start, from: start, end };
}

/** One bar of size `barSize` starting at `start` out of smaller bars (oldest first, at least one). */
export function combineBars(lower: readonly Bar[], barSize: BarSize, start: number, receivedAt: number): Bar {
  const first = lower[0];
  let high = first.high;
  let low = first.low;
  let volume = 0;
  let wapVolume = 0;
  let wapWeight = 0;
  let trades = 0;
  for (const b of lower) {
    if (b.high > high) high = b.high;
    if (b.low < low) low = b.low;
    volume += b.volume;
    if (b.volume > 0 && Number.isFinite(b.vwap)) {
      wapVolume += b.vwap * b.volume;
      wapWeight += b.volume;
    }
    trades = trades < 0 || b.trades < 0 ? -1 : trades + b.trades;
  }
  const last = lower[lower.length - 1];
  return {
    symbol: first.symbol,
    barSize,
    start,
    open: first.open,
    high,
    low,
    close: last.close,
    volume,
    vwap: wapWeight > 0 ? wapVolume / wapWeight : Number.NaN,
    trades,
    source: last.source,
    receivedAt,
  };
}
