/**
 * Reading the bar cache on a person's behalf, shared by `barkeep bars` and `GET /bars/{symbol}`:
 * which bars a (limit, from, to) query selects, how a time bound is written, and the wire shape.
 */
import { DateTime } from 'luxon';
import type { Bar } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import { MARKET_ZONE, marketDay } from '../market/calendar.ts';
import type { BarReader } from './types.ts';

export interface BarQuery {
  symbol: string;
  barSize: BarSize;
  limit: number;
  /** Inclusive bounds, epoch ms. */
  from?: number;
  to?: number;
}

/**
 * Oldest first, at most `limit` bars:
 * - no bounds: the newest `limit` bars;
 * - `from` (and maybe `to`): the first `limit` bars from `from` on;
 * - only `to`: the newest `limit` bars at or before `to`.
 */
export function queryBars(reader: BarReader, q: BarQuery): Bar[] {
  if (q.from !== undefined) return reader.range(q.symbol, q.barSize, q.from, q.to ?? Number.MAX_SAFE_INTEGER, q.limit);
  return reader.latestN(q.symbol, q.barSize, q.limit, q.to);
}

/** A bar as the HTTP API and `bars --json` show it (the seed's field names). */
export interface WireBar {
  t: string;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  vw: number | null;
  n: number | null;
  source: string;
}

export function barToWire(b: Bar): WireBar {
  return {
    t: new Date(b.start).toISOString(),
    o: b.open,
    h: b.high,
    l: b.low,
    c: b.close,
    v: b.volume,
    vw: Number.isNaN(b.vwap) ? null : b.vwap,
    n: b.trades < 0 ? null : b.trades,
    source: b.source,
  };
}

/**
 * Parses a time bound written by a person or a script; undefined when it is not one.
 * - digits only: epoch ms;
 * - `YYYY-MM-DD`: that day in New York (a `from` takes its start, a `to` its last millisecond);
 * - ISO-8601 date-time: with an offset or `Z` as written, without one in New York time.
 */
export function parseTimeBound(text: string, edge: 'from' | 'to'): number | undefined {
  const value = text.trim();
  if (/^\d{1,16}$/.test(value)) return Number(value);
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const day = DateTime.fromISO(value, { zone: MARKET_ZONE });
    if (!day.isValid) return undefined;
    const { start, end } = marketDay(day.toMillis());
    return edge === 'from' ? start : end - 1;
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value)) return undefined;
  const dt = DateTime.fromISO(value, { zone: MARKET_ZONE });
  if (!dt.isValid) return undefined;
  const ms = dt.toMillis();
  return ms >= 0 ? ms : undefined;
}

export const TIME_BOUND_HELP = 'an ISO-8601 time (New York unless it has an offset), a YYYY-MM-DD New York date, or epoch milliseconds';
