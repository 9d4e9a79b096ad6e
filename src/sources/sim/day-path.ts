/**
 * One New York day of one symbol's simulated path: the symbol's traits, the day's opening level
 * (Levy midpoint displacement over day numbers), the Brownian bridge of minute log-prices shaped
 * by the session, and the 5-second bars of each minute. Pure functions of (seed key, day); the
 * caching and the public API are in price-path.ts.
 */
import type { BarStats, Ohlcv } from '../../market/bar.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import { formatDay } from '../../market/calendar-data.ts';
import { Rng, hashString, mix32 } from './random.ts';

export type SimSession = 'always' | 'nyse';

/** A bar of the simulated path; Bar without symbol, size and source. */
export type PathBar = Ohlcv & BarStats;

export const MINUTE = 60_000;
const SUB_BARS = 12;
const SUB_MS = MINUTE / SUB_BARS;
const DAY_BITS = 16;
/** Day numbers 0 ..= LAST_DAY have an opening level, so days 0 .. LAST_DAY - 1 have a path. */
export const LAST_DAY = 1 << DAY_BITS;
const CAP_DAYS = 256;
const TRADING_DAYS_PER_YEAR = 252;

// Stream tags keep the day, minute and level streams of one symbol independent.
const TAG_LEVEL = 0x1e7e1;
const TAG_DAY = 0xd4e;
const TAG_MINUTE = 0x5b5;

export interface SymbolModel {
  key: number;
  logBase: number;
  /** Daily log-return standard deviation, from an annualised 20-40%. */
  sigmaDay: number;
  /** Regular-hours trades per minute before the intraday shape. */
  activity: number;
  /** Mean shares per trade. */
  tradeSize: number;
}

export interface DayPath {
  start: number;
  minutes: number;
  /** Log price at each minute edge (minutes + 1 values). */
  logP: Float64Array;
  sigma: Float64Array;
  trades: Int32Array;
  /** 1 where the minute is in a session (5-second bars exist), 0 otherwise. */
  active: Uint8Array;
  tradeSize: Float64Array;
  bars: (PathBar | undefined)[];
}

const round2 = (x: number) => Math.round(x * 100) / 100;
export const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const cents = (x: number) => Math.max(0.01, round2(x));

/** Base price, volatility and liquidity depend on the symbol alone, so a symbol looks alike under every seed. */
export function symbolModel(symbol: string, seed: number): SymbolModel {
  const traits = new Rng(hashString(symbol));
  const base = 20 * Math.pow(500 / 20, traits.next());
  const annualVol = 0.2 + 0.2 * traits.next();
  return {
    key: mix32(mix32(hashString(symbol), seed), Math.floor(seed / 2 ** 32)),
    logBase: Math.log(base),
    sigmaDay: annualVol / Math.sqrt(TRADING_DAYS_PER_YEAR),
    activity: 20 * Math.pow(15, traits.next()),
    tradeSize: 40 + 160 * traits.next(),
  };
}

/** Log-level (relative to the base) at the open of `day`, by midpoint displacement. */
function level(m: SymbolModel, day: number): number {
  const normal = (node: number) => new Rng(mix32(mix32(m.key, TAG_LEVEL), node)).gauss();
  const var1 = m.sigmaDay * m.sigmaDay;
  let a = 0;
  let b = LAST_DAY;
  let la = 0;
  let lb = normal(LAST_DAY) * Math.sqrt(var1 * Math.min(LAST_DAY, CAP_DAYS));
  for (;;) {
    if (day === a) return la;
    if (day === b) return lb;
    const mid = (a + b) >>> 1;
    const lm = (la + lb) / 2 + normal(mid) * Math.sqrt((var1 * Math.min(b - a, CAP_DAYS)) / 4);
    if (day < mid) {
      b = mid;
      lb = lm;
    } else {
      a = mid;
      la = lm;
    }
  }
}

/** The path of `day` (a day number since 1970-01-01), or null for a closed day in 'nyse' mode. */
export function buildDay(m: SymbolModel, day: number, calendar: MarketCalendar, session: SimSession): DayPath | null {
  const cal = calendar;
  const date = formatDay(day);
  let edges: { pre: number; open: number; close: number; post: number };
  if (session === 'nyse') {
    const b = cal.sessionBounds(date);
    if (!b) return null;
    edges = { pre: b.preOpen, open: b.open, close: b.close, post: b.postClose };
  } else {
    edges = { pre: cal.wallTime(date, 4), open: cal.wallTime(date, 9, 30), close: cal.wallTime(date, 16), post: cal.wallTime(date, 20) };
  }
  const start = cal.dayStart(date);
  const minutes = (cal.dayStart(formatDay(day + 1)) - start) / MINUTE;
  const regularMinutes = (edges.close - edges.open) / MINUTE;
  const weight = new Float64Array(minutes);
  const rate = new Float64Array(minutes);
  const active = new Uint8Array(minutes);
  let totalWeight = 0;
  for (let i = 0; i < minutes; i++) {
    const t = start + i * MINUTE;
    if (t >= edges.open && t < edges.close) {
      // U-shaped activity: heavy at the open, dipping at midday, rising into the close.
      const sinceOpen = (t - edges.open) / MINUTE;
      const toClose = regularMinutes - 1 - sinceOpen;
      weight[i] = 1 + 2 * Math.exp(-sinceOpen / 30) + 0.6 * Math.exp(-toClose / 30);
      rate[i] = m.activity * (0.6 + 2.4 * Math.exp(-sinceOpen / 25) + 1.6 * Math.exp(-toClose / 20));
      active[i] = 1;
    } else if (t >= edges.pre && t < edges.post) {
      weight[i] = 0.35;
      rate[i] = Math.max(6, 0.05 * m.activity);
      active[i] = 1;
    } else {
      weight[i] = 0.15;
      rate[i] = Math.max(4, 0.02 * m.activity);
      active[i] = session === 'always' ? 1 : 0;
    }
    totalWeight += weight[i];
  }

  const rng = new Rng(mix32(mix32(m.key, TAG_DAY), day));
  const dayActivity = Math.exp(0.35 * rng.gauss());
  const var1 = m.sigmaDay * m.sigmaDay;
  const sigma = new Float64Array(minutes);
  const walk = new Float64Array(minutes + 1);
  const cumVar = new Float64Array(minutes + 1);
  for (let i = 0; i < minutes; i++) {
    sigma[i] = Math.sqrt((var1 * weight[i]) / totalWeight);
    walk[i + 1] = walk[i] + sigma[i] * rng.gauss();
    cumVar[i + 1] = cumVar[i] + sigma[i] * sigma[i];
  }
  // Bridge: pin the day's last edge to the next day's opening level, so days join up.
  const l0 = level(m, day);
  const l1 = level(m, day + 1);
  const logP = new Float64Array(minutes + 1);
  const miss = walk[minutes] - (l1 - l0);
  for (let i = 0; i <= minutes; i++) logP[i] = m.logBase + l0 + walk[i] - (cumVar[i] / cumVar[minutes]) * miss;
  logP[minutes] = m.logBase + l1;

  const trades = new Int32Array(minutes);
  const tradeSize = new Float64Array(minutes);
  for (let i = 0; i < minutes; i++) {
    if (!active[i]) continue;
    trades[i] = rng.poisson(rate[i] * dayActivity);
    tradeSize[i] = m.tradeSize * (0.7 + 0.6 * rng.next());
  }
  const path: DayPath = { start, minutes, logP, sigma, trades, active, tradeSize, bars: new Array(minutes) };
  for (let i = 0; i < minutes; i++) {
    if (trades[i] === 0) continue;
    fillSubBars(m, path, i);
    path.bars[i] = Object.freeze(minuteFromSub(start + i * MINUTE));
  }
  return path;
}

/** The 5-second bars of minute `i` as objects (for callers; the day build uses the scratch arrays). */
export function subBars(m: SymbolModel, path: DayPath, i: number): PathBar[] {
  fillSubBars(m, path, i);
  const minuteStart = path.start + i * MINUTE;
  const out: PathBar[] = [];
  for (let k = 0; k < SUB_BARS; k++) {
    out.push({
      start: minuteStart + k * SUB_MS,
      open: sub.open[k],
      high: sub.high[k],
      low: sub.low[k],
      close: sub.close[k],
      volume: sub.volume[k],
      vwap: sub.vwap[k],
      trades: sub.trades[k],
    });
  }
  return out;
}

/** Scratch space for one minute's 5-second bars: the day build fills and folds it 1440 times a day. */
const sub = {
  q: new Float64Array(SUB_BARS + 1),
  px: new Float64Array(SUB_BARS + 1),
  share: new Float64Array(SUB_BARS),
  open: new Float64Array(SUB_BARS),
  high: new Float64Array(SUB_BARS),
  low: new Float64Array(SUB_BARS),
  close: new Float64Array(SUB_BARS),
  volume: new Float64Array(SUB_BARS),
  vwap: new Float64Array(SUB_BARS),
  trades: new Int32Array(SUB_BARS),
};

/** Fills `sub` with minute `i`'s 5-second bars: a 12-step bridge from the minute's open to its close. */
function fillSubBars(m: SymbolModel, path: DayPath, i: number): void {
  const rng = new Rng(mix32(mix32(m.key, TAG_MINUTE), (path.start + i * MINUTE) / MINUTE));
  const from = path.logP[i];
  const to = path.logP[i + 1];
  const sd = path.sigma[i] / Math.sqrt(SUB_BARS);
  const q = sub.q;
  q[0] = 0;
  for (let k = 1; k <= SUB_BARS; k++) q[k] = q[k - 1] + sd * rng.gauss();
  const miss = q[SUB_BARS] - (to - from);
  for (let k = 0; k <= SUB_BARS; k++) q[k] = from + q[k] - (k / SUB_BARS) * miss;
  q[0] = from;
  q[SUB_BARS] = to;
  for (let k = 0; k <= SUB_BARS; k++) sub.px[k] = Math.exp(q[k]);

  // Split the minute's trades over its 5-second bars; the counts add up exactly.
  const total = path.trades[i];
  let shareSum = 0;
  for (let k = 0; k < SUB_BARS; k++) shareSum += sub.share[k] = 0.25 + rng.next();
  let given = 0;
  for (let k = 0; k < SUB_BARS; k++) given += sub.trades[k] = Math.floor((total * sub.share[k]) / shareSum);
  const offset = Math.floor(rng.next() * SUB_BARS);
  for (let j = 0; j < total - given; j++) sub.trades[(offset + j) % SUB_BARS]++;

  for (let k = 0; k < SUB_BARS; k++) {
    // Rounding is monotone, so high >= max(open, close) and low <= min(open, close) survive it.
    const a = sub.px[k];
    const b = sub.px[k + 1];
    const open = cents(a);
    const close = cents(b);
    const high = cents((a > b ? a : b) * (1 + sd * rng.next() * rng.next()));
    const low = cents((a < b ? a : b) * (1 - sd * rng.next() * rng.next()));
    const n = sub.trades[k];
    const size = Math.max(1, Math.round(path.tradeSize[i] * (0.5 + rng.next())));
    const pick = 0.3 + 0.4 * rng.next();
    sub.open[k] = open;
    sub.high[k] = high;
    sub.low[k] = low;
    sub.close[k] = close;
    sub.volume[k] = n * size;
    sub.vwap[k] = n > 0 ? Math.min(high, Math.max(low, round4(low + (high - low) * pick))) : close;
  }
}

/** Folds `sub` into the minute bar, the same way aggregatePathBars folds bars. */
function minuteFromSub(start: number): PathBar {
  let high = -Infinity;
  let low = Infinity;
  let volume = 0;
  let trades = 0;
  let notional = 0;
  for (let k = 0; k < SUB_BARS; k++) {
    if (sub.high[k] > high) high = sub.high[k];
    if (sub.low[k] < low) low = sub.low[k];
    volume += sub.volume[k];
    trades += sub.trades[k];
    notional += sub.vwap[k] * sub.volume[k];
  }
  const close = sub.close[SUB_BARS - 1];
  const vwap = volume > 0 ? Math.min(high, Math.max(low, round4(notional / volume))) : close;
  return { start, open: sub.open[0], high, low, close, volume, vwap, trades };
}
