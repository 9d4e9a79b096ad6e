/**
 * Pre-trade risk: every order passes `RiskEngine.check` before it is journaled, and a refusal names
 * its rule and says why, with the numbers. Rules, in the order they are checked:
 *
 *   kill_switch            engaged by kill(), lifted by resume(); refuses everything but flattening
 *   session                trading only in the sessions config allows (calendar.sessionAt(now))
 *   max_daily_loss         once P&L today <= -maxDailyLoss, only orders that reduce a position pass;
 *                          and a bracket's worst case (the loss if its stop-loss fires), with the
 *                          worst cases of the brackets already open, must fit in what is left
 *   max_position           |position + open orders + this order| per symbol, in shares
 *   max_order_notional     qty x (limit price, else stop price, else last price) per order
 *   max_gross_exposure     sum over symbols of |position + open orders| x last price
 *   max_orders_per_minute  orders sent in the trailing 60 s of clock time
 *
 * An order that reduces a position is never refused by the position, exposure or daily-loss rules
 * (refusing it would keep risk on). Flattening orders from the kill switch skip the kill switch, the
 * notional and the rate limits too: they must get out, whatever their size or number.
 *
 * `check` is synchronous and allocates only when it refuses, since it sits on the bar-to-order path.
 */
import { z } from 'zod';
import type { OrderTicket } from '../../storage/types.ts';
import { BarkeepError } from '../../errors.ts';
import type { TraderErrorCode } from './protocol.ts';

export type MarketSession = 'pre' | 'regular' | 'post' | 'closed';
/** Structural type of src/market/calendar.ts MarketCalendar, the part risk needs. */
export interface SessionCalendar {
  sessionAt(ts: number): MarketSession;
}

export const RISK_RULES = ['kill_switch', 'session', 'max_daily_loss', 'max_position', 'max_order_notional', 'max_gross_exposure', 'max_orders_per_minute'] as const;
export type RiskRule = (typeof RISK_RULES)[number];

export const riskConfigSchema = z
  .object({
    maxPositionPerSymbol: z.number().positive().default(1000),
    maxOrderNotional: z.number().positive().default(50_000),
    maxGrossExposure: z.number().positive().default(200_000),
    maxDailyLoss: z.number().positive().default(5_000),
    maxOrdersPerMinute: z.number().int().positive().max(100_000).default(30),
    allowedSessions: z
      .array(z.enum(['pre', 'regular', 'post', 'always']))
      .min(1)
      .default(['regular']),
  })
  .strict();
export type RiskConfig = z.output<typeof riskConfigSchema>;
export type RiskConfigInput = z.input<typeof riskConfigSchema>;

export class RiskConfigError extends BarkeepError<Extract<TraderErrorCode, 'RISK_CONFIG'>> {
  constructor(message: string) {
    super('RISK_CONFIG', message);
  }
}

export interface RiskOrder extends OrderTicket {
  /** A bracket: the loss in dollars if its stop-loss fires (shares x distance from entry to stop). */
  worstLoss?: number;
  /** A kill-switch flattening order. */
  flatten?: boolean;
}

export interface RiskState {
  /** Filled positions, signed shares. */
  positions: ReadonlyMap<string, number>;
  /** Signed remaining shares of orders still working, per symbol. */
  openQty: ReadonlyMap<string, number>;
  /** Last price per symbol. */
  prices: ReadonlyMap<string, number>;
  /** Realized + unrealized P&L today, dollars (negative is a loss). */
  pnlToday: number;
  /** Clock time, UTC epoch ms. */
  now: number;
  /** What the stop-losses of the brackets still open would lose if they all fired now, dollars. */
  openWorstLoss?: number;
}

export type RiskDecision = { ok: true } | { ok: false; rule: RiskRule; reason: string };

export interface RiskSnapshot {
  killed: boolean;
  killedAt?: number;
  ordersLastMinute: number;
  config: RiskConfig;
}

const OK: RiskDecision = Object.freeze({ ok: true });
const MINUTE = 60_000;
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const shares = new Intl.NumberFormat('en-US');

export class RiskEngine {
  readonly config: RiskConfig;
  private readonly calendar?: SessionCalendar;
  private readonly anySession: boolean;
  private readonly sessions: ReadonlySet<string>;
  /** Times of the last maxOrdersPerMinute orders, as a ring. */
  /** Times of the last orders sent, a ring that grows (doubling) to maxOrdersPerMinute as orders come. */
  private recent: Float64Array;
  private recentNext = 0;
  private recentCount = 0;
  private isKilled = false;
  private killedAt: number | undefined;

  constructor(cfg: RiskConfigInput, calendar?: SessionCalendar) {
    const parsed = riskConfigSchema.safeParse(cfg);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.');
      throw new RiskConfigError(`risk config "${field}": ${issue.message}`);
    }
    this.config = parsed.data;
    this.calendar = calendar;
    this.anySession = this.config.allowedSessions.includes('always');
    this.sessions = new Set(this.config.allowedSessions);
    if (!this.anySession && !calendar) {
      throw new RiskConfigError(`risk config "allowedSessions" limits trading to ${this.config.allowedSessions.join(', ')}, which needs a market calendar; none was given`);
    }
    // Not the whole limit up front: a limit of 100,000 would be an 800 KB array per engine (each
    // backtest of a sweep builds one), mostly never written.
    this.recent = new Float64Array(Math.min(this.config.maxOrdersPerMinute, 64));
  }

  get killed(): boolean {
    return this.isKilled;
  }

  /** Engages the kill switch; `at` (clock time) is kept for status. */
  kill(at?: number): void {
    if (this.isKilled) return;
    this.isKilled = true;
    this.killedAt = at;
  }

  resume(): void {
    this.isKilled = false;
    this.killedAt = undefined;
  }

  /** Counts an order that was sent, for the per-minute limit. */
  recordOrder(at: number): void {
    if (this.recentCount === this.recent.length && this.recent.length < this.config.maxOrdersPerMinute) {
      // Full below the limit: grow, oldest first, and append after the newest.
      const grown = new Float64Array(Math.min(this.config.maxOrdersPerMinute, this.recent.length * 2));
      grown.set(this.recent.subarray(this.recentNext));
      grown.set(this.recent.subarray(0, this.recentNext), this.recent.length - this.recentNext);
      this.recent = grown;
      this.recentNext = this.recentCount;
    }
    this.recent[this.recentNext] = at;
    this.recentNext = (this.recentNext + 1) % this.recent.length;
    if (this.recentCount < this.recent.length) this.recentCount++;
  }

  ordersInLastMinute(now: number): number {
    let n = 0;
    for (let i = 0; i < this.recentCount; i++) if (this.recent[i] > now - MINUTE) n++;
    return n;
  }

  snapshot(now: number): RiskSnapshot {
    return {
      killed: this.killed,
      ...(this.killedAt !== undefined ? { killedAt: this.killedAt } : {}),
      ordersLastMinute: this.ordersInLastMinute(now),
      config: this.config,
    };
  }

  check(order: RiskOrder, state: RiskState): RiskDecision {
    const cfg = this.config;
    const flatten = order.flatten === true;
    if (this.isKilled && !flatten) return refuse('kill_switch', 'kill switch engaged');

    if (!this.anySession) {
      const session = this.calendar!.sessionAt(state.now);
      if (!this.sessions.has(session)) {
        const now = session === 'closed' ? 'the market is closed' : `it is the ${session === 'pre' ? 'pre-market' : session === 'post' ? 'after-hours' : 'regular'} session`;
        return refuse('session', `${now} at ${new Date(state.now).toISOString()}; trading is allowed only in: ${cfg.allowedSessions.join(', ')}`);
      }
    }

    const symbol = order.symbol;
    const signed = order.side === 'buy' ? order.qty : -order.qty;
    const before = (state.positions.get(symbol) ?? 0) + (state.openQty.get(symbol) ?? 0);
    const after = before + signed;
    const reduces = Math.abs(after) < Math.abs(before) && after * before >= 0;

    if (!reduces && state.pnlToday <= -cfg.maxDailyLoss) {
      return refuse(
        'max_daily_loss',
        `${what(order)} refused: the loss today of ${usd.format(-state.pnlToday)} has reached the maximum daily loss of ${usd.format(cfg.maxDailyLoss)}; only orders that reduce a position are accepted`,
      );
    }

    if (!reduces && order.worstLoss !== undefined) {
      const open = state.openWorstLoss ?? 0;
      const headroom = cfg.maxDailyLoss + state.pnlToday - open;
      if (order.worstLoss > headroom) {
        return refuse(
          'max_daily_loss',
          `${what(order)} could lose ${usd.format(order.worstLoss)} if its stop-loss fires, more than the ${usd.format(Math.max(0, headroom))} left of the maximum daily loss of ${usd.format(cfg.maxDailyLoss)} (P&L today ${usd.format(state.pnlToday)}, open stop-losses ${usd.format(open)})`,
        );
      }
    }

    if (!reduces && Math.abs(after) > cfg.maxPositionPerSymbol) {
      return refuse(
        'max_position',
        `${what(order)} would take the ${symbol} position (with open orders) from ${shares.format(before)} to ${shares.format(after)} shares, beyond the maximum of ${shares.format(cfg.maxPositionPerSymbol)} per symbol`,
      );
    }

    const last = state.prices.get(symbol);
    const price = order.limitPrice ?? order.stopPrice ?? last;
    if (!flatten) {
      if (price === undefined) {
        return refuse('max_order_notional', `${what(order)} refused: no price is known for ${symbol} yet, so its notional cannot be checked`);
      }
      const notional = order.qty * price;
      if (notional > cfg.maxOrderNotional) {
        return refuse(
          'max_order_notional',
          `${what(order)} has a notional of ${usd.format(notional)} (${shares.format(order.qty)} x ${usd.format(price)}), above the maximum of ${usd.format(cfg.maxOrderNotional)} per order`,
        );
      }
    }

    if (!reduces) {
      const grossBefore = grossExposure(state);
      const mark = last ?? price ?? 0;
      const grossAfter = grossBefore - Math.abs(before) * (last ?? 0) + Math.abs(after) * mark;
      if (grossAfter > cfg.maxGrossExposure) {
        return refuse(
          'max_gross_exposure',
          `${what(order)} would take gross exposure from ${usd.format(grossBefore)} to ${usd.format(grossAfter)}, above the maximum of ${usd.format(cfg.maxGrossExposure)}`,
        );
      }
    }

    if (!flatten && this.recentCount === this.config.maxOrdersPerMinute) {
      // The ring holds the last maxOrdersPerMinute order times; if the oldest is inside the window, all are.
      const oldest = this.recent[this.recentNext];
      if (oldest > state.now - MINUTE) {
        return refuse('max_orders_per_minute', `${what(order)} refused: ${cfg.maxOrdersPerMinute} orders were already sent in the last minute, the maximum is ${cfg.maxOrdersPerMinute} per minute`);
      }
    }
    return OK;
  }
}

/** `buy 1,000 QQQ`: how a refusal names the order (worded only when refusing: this path is hot). */
function what(order: RiskOrder): string {
  return `${order.side} ${shares.format(order.qty)} ${order.symbol}`;
}

function refuse(rule: RiskRule, reason: string): RiskDecision {
  return { ok: false, rule, reason };
}

/** Sum of |position + open orders| x last price; symbols with no known price count zero. */
export function grossExposure(state: RiskState): number {
  let gross = 0;
  for (const [symbol, qty] of state.positions) {
    const price = state.prices.get(symbol);
    if (price !== undefined) gross += Math.abs(qty + (state.openQty.get(symbol) ?? 0)) * price;
  }
  for (const [symbol, qty] of state.openQty) {
    if (state.positions.has(symbol)) continue;
    const price = state.prices.get(symbol);
    if (price !== undefined) gross += Math.abs(qty) * price;
  }
  return gross;
}
