/**
 * SimMarket: the built-in simulated market, a HistoricalBarSource that needs no vendor key, so a
 * fresh machine runs the whole pipeline.
 *
 * - Bars depend only on (seed, symbol, bar size, start): any request, at any time and in any
 *   chunks, gives the same numbers. Only complete bars are returned (the bar's period has ended
 *   by `clock.now()`), like a vendor's historical endpoint.
 * - Sizes above 1Min aggregate the minute path (open first, high max, low min, close last, volume
 *   and trades summed, vwap volume-weighted), so sizes agree. Intraday bars align to the UTC epoch
 *   (as floorToBar); 1Day bars run from midnight to midnight New York (23 or 25 h on DST days).
 * - No rate limit. In `stats()`, rateLimitRemaining is -1 ("unlimited", JSON has no Infinity) and
 *   rateLimitPerMin is 0.
 *
 * Cost: CPU only, about 2 microseconds per simulated minute on first touch (a year of 1Min or of
 * 1Day bars takes about 1 s), then cached per day (SimPricePath's LRUs). It runs on the caller's
 * thread, so ask for long histories in chunks if the thread has other work.
 */
import type { Bar } from '../../market/bar.ts';
import { isValidSymbol } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { barSizeMs, floorToBar, isBarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import { formatDay, parseDay } from '../../market/calendar-data.ts';
import type { Clock } from '../../market/clock.ts';
import { SourceError } from '../types.ts';
import type { HistoricalBarSource, SourceStats } from '../types.ts';
import { SIM_FIRST_DAY, SIM_LAST_DAY, SimPricePath, aggregatePathBars, type PathBar, type SimSession } from './price-path.ts';

export interface SimMarketOptions {
  seed: number;
  clock: Clock;
  /** 'always' (default): a 24/7 market. 'nyse': bars only in NYSE pre/regular/post sessions. */
  session?: SimSession;
  calendar?: MarketCalendar;
  /** Days of minute paths kept in memory (per symbol and day). Default 64. */
  cacheDays?: number;
}

export class SimMarket implements HistoricalBarSource {
  readonly name = 'sim' as const;
  readonly apiType = 'Simulated' as const;
  /** The price path behind the bars; the IBKR simulator can share it for 5-second bars. */
  readonly path: SimPricePath;
  private readonly clock: Clock;
  private counters = { requests: 0, errors: 0 };
  private lastError: SourceStats['lastError'];

  constructor(opts: SimMarketOptions) {
    this.clock = opts.clock;
    this.path = new SimPricePath({ seed: opts.seed, session: opts.session, calendar: opts.calendar, cacheDays: opts.cacheDays });
  }

  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    this.counters.requests++;
    if (signal?.aborted) throw this.fail('ABORTED', 'request aborted', signal.reason);
    if (!isValidSymbol(symbol)) throw this.fail('BAD_REQUEST', `symbol must be an upper-case ticker such as QQQ or BRK.B, got ${JSON.stringify(symbol)}`);
    if (!isBarSize(barSize)) throw this.fail('BAD_REQUEST', `barSize must be one of 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day, got ${JSON.stringify(barSize)}`);
    if (typeof from !== 'number' || !Number.isFinite(from)) throw this.fail('BAD_REQUEST', `from must be epoch ms, got ${String(from)}`);
    if (typeof to !== 'number' || !Number.isFinite(to)) throw this.fail('BAD_REQUEST', `to must be epoch ms, got ${String(to)}`);

    const now = this.clock.now();
    const bars: Bar[] = [];
    const emit = (p: PathBar) => bars.push({ symbol, barSize, ...p, source: 'sim', receivedAt: now });
    if (barSize === '1Day') this.daily(symbol, from, to, now, emit);
    else this.intraday(symbol, barSize, from, to, now, emit);
    return bars;
  }

  stats(): SourceStats {
    return {
      requests: this.counters.requests,
      errors: this.counters.errors,
      retries: 0,
      rateLimited: 0,
      malformed: 0,
      rateLimitRemaining: -1,
      rateLimitPerMin: 0,
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
    };
  }

  private intraday(symbol: string, size: BarSize, from: number, to: number, now: number, emit: (b: PathBar) => void): void {
    const len = barSizeMs(size);
    const first = floorToBar(from, size) === from ? from : floorToBar(from, size) + len;
    // Buckets starting before `to` end by ceil(to); complete ones end by floor(now).
    const ceilTo = floorToBar(to, size) === to ? to : floorToBar(to, size) + len;
    const end = Math.min(ceilTo, floorToBar(now, size));
    if (!(first < end)) return;
    if (len === 60_000) {
      this.path.forEachMinuteBar(symbol, first, end, emit);
      return;
    }
    let bucket: PathBar[] = [];
    let bucketStart = NaN;
    this.path.forEachMinuteBar(symbol, first, end, (m) => {
      const s = floorToBar(m.start, size);
      if (s !== bucketStart && bucket.length > 0) {
        emit(aggregatePathBars(bucket, bucketStart));
        bucket = [];
      }
      bucketStart = s;
      bucket.push(m);
    });
    if (bucket.length > 0) emit(aggregatePathBars(bucket, bucketStart));
  }

  private daily(symbol: string, from: number, to: number, now: number, emit: (b: PathBar) => void): void {
    const cal = this.path.calendar;
    from = Math.max(from, cal.dayStart(SIM_FIRST_DAY));
    to = Math.min(to, cal.dayStart(formatDay(parseDay(SIM_LAST_DAY)! + 1)));
    if (!(from < to)) return;
    let day = parseDay(cal.dateOf(from))!;
    if (cal.dayStart(formatDay(day)) < from) day++;
    for (;;) {
      const date = formatDay(day);
      const start = cal.dayStart(date);
      if (start >= to || cal.dayStart(formatDay(day + 1)) > now) return;
      const bar = this.path.dayBar(symbol, date);
      if (bar) emit(bar);
      day++;
    }
  }

  private fail(code: 'BAD_REQUEST' | 'ABORTED', message: string, cause?: unknown): SourceError {
    const err = new SourceError('sim', code, message, { cause });
    this.counters.errors++;
    this.lastError = { code, message, at: this.clock.now() };
    return err;
  }
}
