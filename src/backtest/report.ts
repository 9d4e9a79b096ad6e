/**
 * From an engine run to a report: round-trip trades from the fills, and the metrics a trader
 * compares strategies by, in total and per symbol. All of it is plain JSON (snake_case, times as
 * ISO strings for people, ratios as fractions: 0.05 is 5 %).
 *
 * Definitions (so that a number can be checked by hand):
 * - total_return: final equity / starting cash - 1. Equity = cash + positions at the last close.
 * - cagr: (1 + total_return)^(1 / years) - 1 over the time from the first bar's close to the last
 *   one's (365.25-day years); null for spans under a day.
 * - sharpe, sortino: from daily returns (equity at each New York day's last bar against the day
 *   before; the first day against the starting cash), annualized by sqrt(252), no risk-free rate.
 *   Sharpe divides by the sample standard deviation; Sortino by the downside deviation
 *   sqrt(mean(min(r, 0)^2)). null with fewer than two days or no variation.
 * - max_drawdown: the largest fall from a running peak of equity, as a fraction of the peak, over
 *   every bar's close; max_drawdown_duration_days: the longest time spent below a peak (to the
 *   recovery, or to the end when it never recovered), in days.
 * - trades: closed round trips (flat to flat, or to the other side); a position still open at the
 *   end is listed as an open trade and kept out of win_rate and profit_factor.
 * - win_rate: closed trades with pnl > 0 / closed trades. profit_factor: gross profit / gross loss
 *   of closed trades (null when there is no losing trade).
 * - exposure: the fraction of bar closes at which a position was held.
 * - turnover: traded notional / average daily equity.
 * - commissions: sum over fills. Trade pnl is net of its commissions.
 * Per symbol, equity means starting cash + that symbol's P&L, taken at each day's end (so a
 * symbol's drawdown is measured on day-end values, the total's on every bar close).
 */
import { createHash } from 'node:crypto';
import type { OrderRecord } from '../storage/types.ts';
import type { DailyRow, EngineResult, FillRow } from './engine.ts';

export interface Metrics {
  final_equity: number;
  pnl: number;
  total_return: number;
  cagr: number | null;
  sharpe: number | null;
  sortino: number | null;
  max_drawdown: number;
  max_drawdown_duration_days: number;
  win_rate: number | null;
  profit_factor: number | null;
  exposure: number;
  turnover: number;
  commissions: number;
  trades: number;
  open_trades: number;
  fills: number;
}

export interface TradeRow {
  symbol: string;
  direction: 'long' | 'short';
  entry_time: string;
  exit_time: string | null;
  /** Largest absolute position during the trade. */
  qty: number;
  entry_price: number;
  exit_price: number | null;
  pnl: number;
  return: number;
  commission: number;
  open: boolean;
}

export interface EquityPoint {
  time: string;
  equity: number;
}

export interface BacktestReport extends Metrics {
  strategy: string;
  params: Record<string, unknown>;
  /** The protective exits put on every entry (stop_loss_pct, take_profit_pct, trailing_stop_pct), or null. */
  exits: Record<string, number> | null;
  /** What ended day orders: 'nyse' (the session close) or 'none' (the 24/7 simulated market). */
  calendar: 'nyse' | 'none';
  symbols: string[];
  bar_size: string;
  from: string;
  to: string;
  starting_cash: number;
  bars: number;
  orders: number;
  refused: number;
  /** sha256 of the fills (order id, side, quantity, price, time, commission), first 16 hex digits. */
  digest: string;
  per_symbol: Record<string, Metrics>;
  /** The equity curve, at most EQUITY_POINTS points (evenly thinned; the last point always kept). */
  equity_curve: EquityPoint[];
  final_positions: Record<string, { qty: number; avg_price: number; last_price: number | null }>;
}

export interface BacktestDetail {
  trades: TradeRow[];
  orders: OrderRecord[];
  fills: FillRow[];
  daily: DailyRow[];
}

export interface ReportContext {
  strategy: string;
  params: Record<string, unknown>;
  exits?: Record<string, number> | null;
  calendar?: 'nyse' | 'none';
  from: number;
  to: number;
  /** false: no equity curve (a sweep's rows, whose metrics are what is compared); default true. */
  curve?: boolean;
}

export const EQUITY_POINTS = 1000;
const DAY = 86_400_000;
const YEAR = 365.25 * DAY;
const iso = (t: number) => new Date(t).toISOString();
const round = (x: number, d = 6) => Math.round(x * 10 ** d) / 10 ** d;
const nullable = (x: number | null) => (x === null || !Number.isFinite(x) ? null : round(x));

/** Digest of the fills: equal exactly when two runs traded the same orders at the same prices and times. */
export function fillsDigest(fills: readonly FillRow[]): string {
  // The same bytes as one update per fill, hashed in one call (each update crosses into C++).
  let text = '';
  for (const f of fills) text += `${f.clientOrderId}|${f.side}|${f.qty}|${f.price}|${f.time}|${f.commission}\n`;
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function roundTrips(fills: readonly FillRow[], lastPrices: Readonly<Record<string, number | null>>): TradeRow[] {
  interface Open {
    qty: number;
    avg: number;
    entry: number;
    maxQty: number;
    entryPrice: number;
    realized: number;
    commission: number;
    exitQty: number;
    exitValue: number;
    exitTime: number;
  }
  const out: TradeRow[] = [];
  const make = (symbol: string, t: Open & { sign: number }, closed: boolean, unrealized = 0): TradeRow => {
    const pnl = t.realized + unrealized - t.commission;
    return {
      symbol,
      direction: t.sign > 0 ? 'long' : 'short',
      entry_time: iso(t.entry),
      exit_time: closed ? iso(t.exitTime) : null,
      qty: t.maxQty,
      entry_price: round(t.entryPrice),
      exit_price: t.exitQty > 0 ? round(t.exitValue / t.exitQty) : null,
      pnl: round(pnl),
      return: round(pnl / (t.entryPrice * t.maxQty)),
      commission: round(t.commission),
      open: !closed,
    };
  };
  const trades = new Map<string, Open & { sign: number }>();
  for (const f of fills) {
    const s = f.side === 'buy' ? f.qty : -f.qty;
    const t = trades.get(f.symbol);
    if (!t) {
      trades.set(f.symbol, start(f, s, f.commission));
      continue;
    }
    if (Math.sign(t.qty) === Math.sign(s)) {
      const q = t.qty + s;
      t.avg = (t.avg * Math.abs(t.qty) + f.price * Math.abs(s)) / Math.abs(q);
      t.entryPrice = t.avg;
      t.qty = q;
      t.maxQty = Math.max(t.maxQty, Math.abs(q));
      t.commission += f.commission;
      continue;
    }
    const closed = Math.min(Math.abs(t.qty), Math.abs(s));
    const part = closed / Math.abs(s);
    t.realized += (f.price - t.avg) * closed * Math.sign(t.qty);
    t.commission += f.commission * part;
    t.exitQty += closed;
    t.exitValue += closed * f.price;
    t.exitTime = f.time;
    t.qty += Math.sign(s) * closed;
    if (t.qty === 0) {
      out.push(make(f.symbol, t, true));
      trades.delete(f.symbol);
      const rest = Math.abs(s) - closed;
      if (rest > 0) trades.set(f.symbol, start(f, Math.sign(s) * rest, f.commission * (1 - part)));
    }
  }
  for (const [symbol, t] of trades) {
    const last = lastPrices[symbol];
    const unrealized = last === null || last === undefined ? 0 : (last - t.avg) * t.qty;
    out.push(make(symbol, t, false, unrealized));
  }
  return out.sort((a, b) => (a.entry_time < b.entry_time ? -1 : a.entry_time > b.entry_time ? 1 : a.symbol < b.symbol ? -1 : 1));

  function start(f: FillRow, s: number, commission: number): Open & { sign: number } {
    return {
      qty: s,
      avg: f.price,
      entry: f.time,
      maxQty: Math.abs(s),
      entryPrice: f.price,
      realized: 0,
      commission,
      exitQty: 0,
      exitValue: 0,
      exitTime: f.time,
      sign: Math.sign(s),
    };
  }
}

interface Scope {
  startingCash: number;
  /** Equity at each bar close (for drawdown) with its times. */
  curve: { time: ArrayLike<number>; equity: ArrayLike<number> };
  /** Equity at each day's end. */
  dailyEquity: readonly number[];
  trades: readonly TradeRow[];
  fills: readonly FillRow[];
  exposure: number;
  finalEquity: number;
  years: number | null;
}

function metrics(s: Scope): Metrics {
  const returns: number[] = [];
  let prev = s.startingCash;
  for (const eq of s.dailyEquity) {
    returns.push(prev !== 0 ? eq / prev - 1 : 0);
    prev = eq;
  }
  let sharpe: number | null = null;
  let sortino: number | null = null;
  if (returns.length >= 2) {
    const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
    const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (returns.length - 1);
    const downside = Math.sqrt(returns.reduce((a, r) => a + Math.min(r, 0) ** 2, 0) / returns.length);
    if (variance > 1e-18) sharpe = (mean / Math.sqrt(variance)) * Math.sqrt(252);
    if (downside > 1e-12) sortino = (mean / downside) * Math.sqrt(252);
  }

  let peak = s.startingCash;
  let peakTime = s.curve.time.length > 0 ? s.curve.time[0] : 0;
  let maxDd = 0;
  let maxDur = 0;
  for (let i = 0; i < s.curve.equity.length; i++) {
    const eq = s.curve.equity[i];
    const t = s.curve.time[i];
    if (eq >= peak) {
      maxDur = Math.max(maxDur, t - peakTime);
      peak = eq;
      peakTime = t;
      continue;
    }
    if (peak > 0) maxDd = Math.max(maxDd, (peak - eq) / peak);
  }
  const lastT = s.curve.time.length > 0 ? s.curve.time[s.curve.time.length - 1] : peakTime;
  if (s.curve.equity.length > 0 && s.curve.equity[s.curve.equity.length - 1] < peak) maxDur = Math.max(maxDur, lastT - peakTime);

  const closed = s.trades.filter((t) => !t.open);
  const wins = closed.filter((t) => t.pnl > 0);
  const grossWin = wins.reduce((a, t) => a + t.pnl, 0);
  const grossLoss = -closed.filter((t) => t.pnl < 0).reduce((a, t) => a + t.pnl, 0);
  const notional = s.fills.reduce((a, f) => a + f.qty * f.price, 0);
  const commissions = s.fills.reduce((a, f) => a + f.commission, 0);
  const avgEquity = s.dailyEquity.length > 0 ? s.dailyEquity.reduce((a, b) => a + b, 0) / s.dailyEquity.length : s.startingCash;
  const totalReturn = s.startingCash !== 0 ? s.finalEquity / s.startingCash - 1 : 0;
  const cagr = s.years !== null && s.years >= 1 / 365.25 && 1 + totalReturn > 0 ? (1 + totalReturn) ** (1 / s.years) - 1 : null;
  return {
    final_equity: round(s.finalEquity, 4),
    pnl: round(s.finalEquity - s.startingCash, 4),
    total_return: round(totalReturn),
    cagr: nullable(cagr),
    sharpe: nullable(sharpe),
    sortino: nullable(sortino),
    max_drawdown: round(maxDd),
    max_drawdown_duration_days: round(maxDur / DAY, 4),
    win_rate: closed.length > 0 ? round(wins.length / closed.length) : null,
    profit_factor: grossLoss > 0 ? round(grossWin / grossLoss) : null,
    exposure: round(s.exposure),
    turnover: avgEquity !== 0 ? round(notional / avgEquity) : 0,
    commissions: round(commissions, 4),
    trades: closed.length,
    open_trades: s.trades.length - closed.length,
    fills: s.fills.length,
  };
}

/** Evenly thinned curve: at most `max` points, first and last kept. */
export function thinCurve(time: ArrayLike<number>, equity: ArrayLike<number>, max = EQUITY_POINTS): EquityPoint[] {
  const n = time.length;
  if (n === 0) return [];
  const step = n <= max ? 1 : (n - 1) / (max - 1);
  const out: EquityPoint[] = [];
  for (let k = 0; ; k++) {
    const i = Math.min(n - 1, Math.round(k * step));
    out.push({ time: iso(time[i]), equity: round(equity[i], 4) });
    if (i === n - 1) break;
  }
  return out;
}

export function buildReport(run: EngineResult, ctx: ReportContext): { report: BacktestReport; detail: BacktestDetail } {
  const lastPrices: Record<string, number | null> = {};
  for (const [s, p] of Object.entries(run.positions)) lastPrices[s] = p.lastPrice;
  const trades = roundTrips(run.fills, lastPrices);
  const years = run.firstTime !== null && run.lastTime !== null ? (run.lastTime - run.firstTime) / YEAR : null;
  const total = metrics({
    startingCash: run.startingCash,
    curve: run.curve,
    dailyEquity: run.daily.map((d) => d.equity),
    trades,
    fills: run.fills,
    exposure: run.curve.time.length > 0 ? run.timesHeld / run.curve.time.length : 0,
    finalEquity: run.finalEquity,
    years,
  });
  const perSymbol: Record<string, Metrics> = {};
  for (const symbol of run.symbols) {
    const daily = run.daily.map((d) => run.startingCash + (d.pnl[symbol] ?? 0));
    const tally = run.tally[symbol];
    perSymbol[symbol] = metrics({
      startingCash: run.startingCash,
      curve: { time: run.daily.map((d) => Date.parse(`${d.date}T00:00:00Z`)), equity: daily },
      dailyEquity: daily,
      trades: trades.filter((t) => t.symbol === symbol),
      fills: run.fills.filter((f) => f.symbol === symbol),
      exposure: tally.bars > 0 ? tally.barsHeld / tally.bars : 0,
      finalEquity: daily.length > 0 ? daily[daily.length - 1] : run.startingCash,
      years,
    });
  }
  const finalPositions: BacktestReport['final_positions'] = {};
  for (const [s, p] of Object.entries(run.positions)) finalPositions[s] = { qty: p.qty, avg_price: round(p.avgPrice), last_price: p.lastPrice };
  const report: BacktestReport = {
    strategy: ctx.strategy,
    params: ctx.params,
    exits: ctx.exits ?? null,
    calendar: ctx.calendar ?? 'none',
    symbols: run.symbols,
    bar_size: run.barSize,
    from: iso(ctx.from),
    to: iso(ctx.to),
    starting_cash: run.startingCash,
    ...total,
    bars: run.bars,
    orders: run.counters.orders,
    refused: run.counters.refused,
    digest: fillsDigest(run.fills),
    per_symbol: perSymbol,
    equity_curve: ctx.curve === false ? [] : thinCurve(run.curve.time, run.curve.equity),
    final_positions: finalPositions,
  };
  return { report, detail: { trades, orders: run.orders, fills: run.fills, daily: run.daily } };
}
