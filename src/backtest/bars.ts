/**
 * Reading a backtest's bars from the LMDB cache, and saying where the cache has none.
 *
 * A span is missing for a symbol when a day the market trades (every day, on the 24/7 simulated
 * market) has no bar of that symbol from pre-market open to after-hours close. A quiet minute with
 * no bar is not a gap: only whole days count, and consecutive missing days are one span.
 */
import type { Bar } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import { MarketCalendar, marketDay } from '../market/calendar.ts';
import type { BarReader } from '../storage/types.ts';

export interface MissingSpan {
  symbol: string;
  /** First missing New York date, YYYY-MM-DD. */
  from_date: string;
  /** Last missing New York date, YYYY-MM-DD (inclusive). */
  to_date: string;
  days: number;
  /** The span as epoch ms: [from, to). */
  from: number;
  to: number;
}

export interface LoadedBars {
  bars: Map<string, Bar[]>;
  warmup: Map<string, Bar[]>;
}

/** Bars with from <= start < to, per symbol, and the `warmup` bars before `from`. */
export function loadBars(reader: BarReader, symbols: readonly string[], barSize: BarSize, from: number, to: number, warmup = 0): LoadedBars {
  const bars = new Map<string, Bar[]>();
  const warm = new Map<string, Bar[]>();
  for (const s of symbols) {
    bars.set(s, reader.range(s, barSize, from, to - 1));
    if (warmup > 0) warm.set(s, reader.latestN(s, barSize, warmup, from - 1));
  }
  return { bars, warmup: warm };
}

/** The days in [from, to) on which each symbol has no bar, as spans. */
export function missingSpans(bars: ReadonlyMap<string, readonly Bar[]>, from: number, to: number, opts: { alwaysOpen: boolean; calendar?: MarketCalendar }): MissingSpan[] {
  const calendar = opts.calendar ?? new MarketCalendar();
  const days: Array<{ date: string; start: number; end: number }> = [];
  const last = marketDay(to - 1).start;
  for (let day = marketDay(from); day.start <= last; day = marketDay(day.end)) {
    if (opts.alwaysOpen || calendar.isTradingDay(day.date)) {
      days.push({ date: day.date, start: Math.max(day.start, from), end: Math.min(day.end, to) });
    }
  }
  const out: MissingSpan[] = [];
  for (const [symbol, list] of bars) {
    let i = 0;
    let run: MissingSpan | null = null;
    for (const d of days) {
      while (i < list.length && list[i].start < d.start) i++;
      const has = i < list.length && list[i].start < d.end;
      if (has) {
        if (run) out.push(run);
        run = null;
        continue;
      }
      if (run) {
        run.to_date = d.date;
        run.to = d.end;
        run.days++;
      } else {
        run = { symbol, from_date: d.date, to_date: d.date, days: 1, from: d.start, to: d.end };
      }
    }
    if (run) out.push(run);
  }
  return out;
}
