/**
 * The paper broker's bar rules for one working order and one bar: does it trigger, does it fill,
 * at what price, and where does a trailing stop move; and when a `day` order ends (dayOrderExpiry). Pure functions over plain data, so the
 * rules are the same live, in replay and in backtests (they all use the PaperBroker).
 *
 * The rules, for a bar with open O, high H, low L and slippage s (a fraction, always against the
 * order, never past a limit):
 *
 *   market        fills at O, moved against the order by s.
 *   limit         a buy fills at min(O + s, limit) when O <= limit, at the limit when L < limit;
 *                 a sell mirrors it (O >= limit, H > limit).
 *   stop          a sell stop triggers when the bar trades through it (L <= stop): at O - s when
 *                 the bar gaps past it (O <= stop), else at stop - s. A buy stop mirrors it.
 *   stop_limit    triggers like a stop, then works as a limit: on a gap the limit rule applies to
 *                 the whole bar; triggered inside the bar it fills at the stop when the stop is at
 *                 or better than the limit, and otherwise rests as a limit from the next bar. A
 *                 triggered order that does not fill stays triggered.
 *   trailing_stop a stop whose level follows the best price: a sell trails the highest high by
 *                 the amount (or the percent of that high), a buy the lowest low. Within a bar the
 *                 stop as it stood at the open is checked first (like a stop), then the level moves
 *                 with the bar's extreme for the next bar; on its first bar the best price starts
 *                 at the open (or the stop starts at the given stopPrice). Levels are in cents.
 */
import type { Bar } from '../../market/bar.ts';
import type { OrderSide, OrderType } from '../../storage/types.ts';
import { toCents } from './order-types.ts';

export interface TriggerState {
  type: OrderType;
  side: OrderSide;
  limitPrice?: number;
  /** Current stop level (a trailing stop's moves). */
  stopPrice?: number;
  trailAmount?: number;
  trailPercent?: number;
  /** stop_limit: the stop was hit and it now works as a limit. */
  triggered?: boolean;
  /** trailing_stop: the best price seen (highest high for a sell, lowest low for a buy). */
  extreme?: number;
}

export interface BarOutcome {
  /** Fill price, when the order fills on this bar. */
  price?: number;
  /** The order's trigger state after this bar (a new object when anything changed). */
  next: TriggerState;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** Decides what `bar` does to an order in state `o`; `slip` is slippage as a fraction (bps / 10 000). */
export function onBar(o: TriggerState, bar: Bar, slip: number): BarOutcome {
  switch (o.type) {
    case 'market':
      return { price: adverse(o.side, bar.open, slip), next: o };
    case 'limit':
      return { price: limitFill(o.side, o.limitPrice!, bar, slip), next: o };
    case 'stop':
      return { price: stopFill(o.side, o.stopPrice!, bar, slip), next: o };
    case 'stop_limit':
      return stopLimit(o, bar, slip);
    case 'trailing_stop':
      return trailing(o, bar, slip);
  }
}

function adverse(side: OrderSide, price: number, slip: number): number {
  return round4(side === 'buy' ? price * (1 + slip) : price * (1 - slip));
}

function limitFill(side: OrderSide, limit: number, bar: Bar, slip: number): number | undefined {
  if (side === 'buy') {
    if (bar.open <= limit) return round4(Math.min(adverse('buy', bar.open, slip), limit));
    return bar.low < limit ? limit : undefined;
  }
  if (bar.open >= limit) return round4(Math.max(adverse('sell', bar.open, slip), limit));
  return bar.high > limit ? limit : undefined;
}

/** Whether the bar reaches the stop, and whether it opened past it. */
function stopHit(side: OrderSide, stop: number, bar: Bar): 'gap' | 'through' | undefined {
  if (side === 'sell') {
    if (bar.open <= stop) return 'gap';
    return bar.low <= stop ? 'through' : undefined;
  }
  if (bar.open >= stop) return 'gap';
  return bar.high >= stop ? 'through' : undefined;
}

function stopFill(side: OrderSide, stop: number, bar: Bar, slip: number): number | undefined {
  const hit = stopHit(side, stop, bar);
  if (!hit) return undefined;
  return adverse(side, hit === 'gap' ? bar.open : stop, slip);
}

function stopLimit(o: TriggerState, bar: Bar, slip: number): BarOutcome {
  const limit = o.limitPrice!;
  if (o.triggered) return { price: limitFill(o.side, limit, bar, slip), next: o };
  const hit = stopHit(o.side, o.stopPrice!, bar);
  if (!hit) return { next: o };
  const next = { ...o, triggered: true };
  if (hit === 'gap') return { price: limitFill(o.side, limit, bar, slip), next };
  const stop = o.stopPrice!;
  const atOrBetter = o.side === 'sell' ? stop >= limit : stop <= limit;
  if (!atOrBetter) return { next };
  const px = adverse(o.side, stop, slip);
  return { price: o.side === 'sell' ? Math.max(px, limit) : Math.min(px, limit), next };
}

function trailDistance(o: TriggerState, extreme: number): number {
  return o.trailAmount !== undefined ? o.trailAmount : (extreme * (o.trailPercent ?? 0)) / 100;
}

/** The stop level a trailing order has with best price `extreme`. */
export function trailLevel(o: TriggerState, extreme: number): number {
  const d = trailDistance(o, extreme);
  return toCents(o.side === 'sell' ? extreme - d : extreme + d);
}

function trailing(o: TriggerState, bar: Bar, slip: number): BarOutcome {
  let stop = o.stopPrice;
  let extreme = o.extreme;
  if (stop === undefined) {
    extreme = bar.open;
    stop = trailLevel(o, extreme);
  }
  const price = stopFill(o.side, stop, bar, slip);
  if (price !== undefined) return { price, next: { ...o, stopPrice: stop, extreme } };
  const best = o.side === 'sell' ? Math.max(extreme ?? -Infinity, bar.high) : Math.min(extreme ?? Infinity, bar.low);
  const moved = trailLevel(o, best);
  // A stop only ever tightens: a given initial stopPrice stays until the trail passes it.
  const nextStop = o.side === 'sell' ? Math.max(stop, moved) : Math.min(stop, moved);
  return { next: { ...o, stopPrice: nextStop, extreme: best } };
}

/** The part of the NYSE calendar (src/market/calendar.ts) that ends `day` orders. */
export interface DayOrderCalendar {
  nextClose(ts: number): number;
  sessionBounds(date: string | number): { postClose: number } | undefined;
  nextTradingDay(date: string | number): string;
  sessionAt(ts: number): string;
}

/**
 * When a `day` order accepted at `at` ends: the close of the regular session it belongs to (the
 * current one, or the next when accepted after the close), or with outsideRth the end of that
 * day's after-hours session. Early closes (13:00) come from the calendar.
 */
export function dayOrderExpiry(calendar: DayOrderCalendar, at: number, outsideRth: boolean): number {
  if (!outsideRth) return calendar.nextClose(at);
  const close = calendar.nextClose(at);
  const today = calendar.sessionBounds(at);
  if (today && at < today.postClose && calendar.sessionAt(at) !== 'closed') return today.postClose;
  return calendar.sessionBounds(close)?.postClose ?? close;
}
