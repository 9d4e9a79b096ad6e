/**
 * The order types a strategy can send, and brackets: their fields, the one validation every entry
 * point uses (a strategy's signal, the HTTP body, the config), and the arithmetic of protective
 * exits. Pure functions; no broker, no clock.
 *
 *   type            trigger / price fields                  fills (paper: paper-fills.ts; IBKR: native)
 *   market          -                                       next bar's open
 *   limit           limitPrice                              when a bar trades through the limit
 *   stop            stopPrice                               market once a bar trades through the stop
 *   stop_limit      stopPrice, limitPrice                   a limit order once triggered
 *   trailing_stop   trailAmount | trailPercent (stopPrice)  a stop that follows the best price
 *
 * Time in force: `day` (the default for orders a strategy sends) ends at the close of the session
 * the order is in (after hours too with outsideRth), `gtc` works until cancelled (the default for
 * bracket exits: protection should not lapse overnight), `ioc` gets one chance (market and limit only).
 *
 * A bracket is an entry with a take-profit (limit) and a stop-loss (stop or trailing stop) that
 * close what the entry opened. The exits work only once the entry has filled, and are
 * one-cancels-other: when one fills the other is cancelled. The legs share a group id (the entry's
 * client order id); each exit has its own deterministic client order id, `<entry id>-tp` / `-sl`.
 *
 * Protective exits come from settings (`trader.exits`, or `exits` in POST /live/start) in percent
 * of the entry's reference price: its limit price, else its stop price, else the last price. A
 * signal may carry its own exits, which take precedence.
 */
import type { OrderRole, OrderSide, OrderSpec, OrderType, TimeInForce } from '../../storage/types.ts';
import { BarkeepError } from '../../errors.ts';

export const ORDER_TYPES: readonly OrderType[] = ['market', 'limit', 'stop', 'stop_limit', 'trailing_stop'];
export const TIMES_IN_FORCE: readonly TimeInForce[] = ['day', 'gtc', 'ioc'];
export const ORDER_ROLES: readonly OrderRole[] = ['entry', 'take_profit', 'stop_loss'];

export type { OrderSpec };

/** Protective exits, in percent of the entry's reference price (2 means 2%). */
export interface ExitSettings {
  stopLossPct?: number;
  takeProfitPct?: number;
  trailingStopPct?: number;
}

/** A problem with one input field: `field` is the name the caller used (signal.stopPrice, exits.stop_loss_pct). */
export interface FieldProblem {
  field: string;
  message: string;
}

export class OrderSpecError extends BarkeepError<'ORDER_SPEC'> {
  declare readonly field: string;
  constructor(problem: FieldProblem) {
    super('ORDER_SPEC', `${problem.field}: ${problem.message}`, { field: problem.field });
  }
}

const isPrice = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x > 0;
const show = (x: unknown) => (typeof x === 'string' ? JSON.stringify(x) : String(x));

const NO_NAMES: Partial<Record<keyof OrderSpec, string>> = {};
const PRICE_FIELDS = ['limitPrice', 'stopPrice'] as const;
/** A field's name as the caller calls it (no closure per call: the paper broker checks every order). */
const fieldName = (prefix: string, names: Partial<Record<keyof OrderSpec, string>>, k: keyof OrderSpec) => `${prefix}${names[k] ?? k}`;

/**
 * Why this order cannot be sent, or undefined. `names` maps our field names to what the caller
 * calls them (camelCase for signals, snake_case for HTTP); `prefix` is put before each.
 */
export function orderSpecProblem(spec: Record<string, unknown>, prefix: string, names: Partial<Record<keyof OrderSpec, string>> = NO_NAMES): FieldProblem | undefined {
  const type = spec.type;
  if (!ORDER_TYPES.includes(type as OrderType)) return { field: fieldName(prefix, names, 'type'), message: `must be one of ${ORDER_TYPES.join(', ')}, got ${show(type)}` };
  for (const k of PRICE_FIELDS) {
    const v = spec[k];
    const needed = k === 'limitPrice' ? type === 'limit' || type === 'stop_limit' : type === 'stop' || type === 'stop_limit';
    if (needed && !isPrice(v)) return { field: fieldName(prefix, names, k), message: `a ${type} order needs a positive price, got ${show(v)}` };
    if (!needed && v !== undefined && !(k === 'stopPrice' && type === 'trailing_stop' && isPrice(v))) {
      return { field: fieldName(prefix, names, k), message: `is not used by a ${type} order; leave it out` };
    }
  }
  const amount = spec.trailAmount;
  const percent = spec.trailPercent;
  if (type === 'trailing_stop') {
    if ((amount === undefined) === (percent === undefined))
      return {
        field: fieldName(prefix, names, 'trailAmount'),
        message: `a trailing_stop needs exactly one of ${fieldName(prefix, names, 'trailAmount')} (dollars) or ${fieldName(prefix, names, 'trailPercent')}`,
      };
    if (amount !== undefined && !isPrice(amount)) return { field: fieldName(prefix, names, 'trailAmount'), message: `must be a positive number of dollars, got ${show(amount)}` };
    if (percent !== undefined && !(isPrice(percent) && percent < 100))
      return { field: fieldName(prefix, names, 'trailPercent'), message: `must be a percent above 0 and below 100, got ${show(percent)}` };
  } else {
    if (amount !== undefined) return { field: fieldName(prefix, names, 'trailAmount'), message: `is only for trailing_stop orders, not ${type}` };
    if (percent !== undefined) return { field: fieldName(prefix, names, 'trailPercent'), message: `is only for trailing_stop orders, not ${type}` };
  }
  const tif = spec.tif;
  if (tif !== undefined) {
    if (!TIMES_IN_FORCE.includes(tif as TimeInForce)) return { field: fieldName(prefix, names, 'tif'), message: `must be one of ${TIMES_IN_FORCE.join(', ')}, got ${show(tif)}` };
    if (tif === 'ioc' && type !== 'market' && type !== 'limit')
      return { field: fieldName(prefix, names, 'tif'), message: `ioc is for market and limit orders; a ${type} order waits for its trigger (use day or gtc)` };
  }
  if (spec.outsideRth !== undefined && typeof spec.outsideRth !== 'boolean') return { field: fieldName(prefix, names, 'outsideRth'), message: `must be true or false, got ${show(spec.outsideRth)}` };
  if (spec.outsideRth === true && type === 'market') return { field: fieldName(prefix, names, 'outsideRth'), message: 'IBKR does not work market orders outside regular hours; use a limit order' };
  return undefined;
}

export const EXIT_KEYS = ['stopLossPct', 'takeProfitPct', 'trailingStopPct'] as const;
export const EXIT_KEYS_SNAKE: Record<(typeof EXIT_KEYS)[number], string> = {
  stopLossPct: 'stop_loss_pct',
  takeProfitPct: 'take_profit_pct',
  trailingStopPct: 'trailing_stop_pct',
};

/** The exit settings' own names (a constant: the default below is evaluated on every call, once per signal). */
const EXIT_KEYS_CAMEL: Record<(typeof EXIT_KEYS)[number], string> = { stopLossPct: 'stopLossPct', takeProfitPct: 'takeProfitPct', trailingStopPct: 'trailingStopPct' };

/**
 * Why these exit settings are unusable, or undefined. Keys are `keys` (camelCase for signals,
 * EXIT_KEYS_SNAKE for HTTP and config). null or absent means "no such exit".
 */
export function exitsProblem(exits: unknown, prefix: string, keys: Record<(typeof EXIT_KEYS)[number], string> = EXIT_KEYS_CAMEL): FieldProblem | undefined {
  if (exits === undefined || exits === null) return undefined;
  if (typeof exits !== 'object' || Array.isArray(exits)) return { field: prefix.replace(/\.$/, ''), message: 'must be an object' };
  const o = exits as Record<string, unknown>;
  const known = new Set(Object.values(keys));
  for (const k of Object.keys(o)) if (!known.has(k)) return { field: `${prefix}${k}`, message: `is not an exit setting (known: ${[...known].join(', ')})` };
  for (const k of EXIT_KEYS) {
    const v = o[keys[k]];
    if (v === undefined || v === null) continue;
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0 && v < 100)) return { field: `${prefix}${keys[k]}`, message: `must be a percent above 0 and below 100, got ${show(v)}` };
  }
  if (o[keys.stopLossPct] != null && o[keys.trailingStopPct] != null) {
    return { field: `${prefix}${keys.trailingStopPct}`, message: `the stop-loss leg is either fixed (${keys.stopLossPct}) or trailing (${keys.trailingStopPct}), not both` };
  }
  return undefined;
}

/** Exit settings from a snake_case object (config, HTTP), dropping nulls. Validate first. */
export function exitsFromSnake(body: object | null | undefined): ExitSettings | undefined {
  if (!body) return undefined;
  const o = body as Record<string, unknown>;
  const out: ExitSettings = {};
  for (const k of EXIT_KEYS) {
    const v = o[EXIT_KEYS_SNAKE[k]];
    if (typeof v === 'number') out[k] = v;
  }
  return hasExits(out) ? out : undefined;
}

export function exitsToSnake(e: ExitSettings | undefined): Record<string, number> | null {
  if (!e || !hasExits(e)) return null;
  const out: Record<string, number> = {};
  for (const k of EXIT_KEYS) if (e[k] !== undefined) out[EXIT_KEYS_SNAKE[k]] = e[k]!;
  return out;
}

export function hasExits(e: ExitSettings | undefined): e is ExitSettings {
  return e !== undefined && (e.stopLossPct !== undefined || e.takeProfitPct !== undefined || e.trailingStopPct !== undefined);
}

/** Rounds a price to the cent (the tick of US stocks at or above $1). */
export function toCents(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The price an entry's exits are measured from: its limit, else its stop, else the last price. */
export function referencePrice(spec: OrderSpec, last: number | undefined): number | undefined {
  if (spec.type === 'limit' || spec.type === 'stop_limit') return spec.limitPrice;
  if (spec.type === 'stop') return spec.stopPrice;
  return last;
}

export interface ExitLeg extends OrderSpec {
  role: 'take_profit' | 'stop_loss';
  side: OrderSide;
  qty: number;
}

/**
 * The exit legs that protect an entry of `qty` shares on `entrySide` bought or sold near `ref`.
 * A long's take-profit is above and its stop below; a short's the other way round.
 */
export function exitLegs(entrySide: OrderSide, qty: number, ref: number, exits: ExitSettings): ExitLeg[] {
  const side: OrderSide = entrySide === 'buy' ? 'sell' : 'buy';
  const up = entrySide === 'buy' ? 1 : -1;
  const legs: ExitLeg[] = [];
  if (exits.takeProfitPct !== undefined) {
    legs.push({ role: 'take_profit', side, qty, type: 'limit', limitPrice: toCents(ref * (1 + (up * exits.takeProfitPct) / 100)), tif: 'gtc' });
  }
  if (exits.stopLossPct !== undefined) {
    legs.push({ role: 'stop_loss', side, qty, type: 'stop', stopPrice: toCents(ref * (1 - (up * exits.stopLossPct) / 100)), tif: 'gtc' });
  } else if (exits.trailingStopPct !== undefined) {
    legs.push({ role: 'stop_loss', side, qty, type: 'trailing_stop', trailPercent: exits.trailingStopPct, tif: 'gtc' });
  }
  return legs;
}

/** The client order id of a bracket exit: the entry's id with `-tp` or `-sl`. */
export function exitOrderId(groupId: string, role: 'take_profit' | 'stop_loss'): string {
  return `${groupId}-${role === 'take_profit' ? 'tp' : 'sl'}`;
}

/**
 * The loss, in dollars, if a stop-loss leg of `qty` shares closing a position entered near `ref`
 * fires: the distance to its stop (or its trail) times the shares. Undefined without a stop.
 */
export function stopLossDistance(leg: Pick<OrderSpec, 'type' | 'stopPrice' | 'trailAmount' | 'trailPercent' | 'limitPrice'>, ref: number): number | undefined {
  if (leg.type === 'trailing_stop') {
    if (leg.trailAmount !== undefined) return leg.trailAmount;
    if (leg.trailPercent !== undefined) return (ref * leg.trailPercent) / 100;
    return undefined;
  }
  if (leg.type === 'stop' || leg.type === 'stop_limit') return leg.stopPrice === undefined ? undefined : Math.abs(ref - leg.stopPrice);
  return undefined;
}

/** The fields of an order that describe its type, as JSON (snake_case) for /orders and /live/status. */
export function orderTypeView(r: OrderSpec & { groupId?: string; role?: OrderRole }) {
  return {
    type: r.type,
    limit_price: r.limitPrice ?? null,
    stop_price: r.stopPrice ?? null,
    trail: r.trailAmount !== undefined ? { amount: r.trailAmount } : r.trailPercent !== undefined ? { percent: r.trailPercent } : null,
    tif: r.tif ?? 'day',
    outside_rth: r.outsideRth === true,
    group_id: r.groupId ?? null,
    role: r.role ?? null,
  };
}
