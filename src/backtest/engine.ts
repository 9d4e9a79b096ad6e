/**
 * The backtest engine: runs bars from history through the very objects that trade live
 * (TradingLoop, RiskEngine, OrderManager, PaperBroker and the strategy, from src/actors/trader/),
 * on a replay clock, with an in-memory journal and broker state.
 *
 * What makes it the live behaviour and not a second implementation of it:
 * - Bars of all symbols are merged in time order (ties in the order of `symbols`) and handed to
 *   TradingLoop.onBar one at a time, each awaited, as the trader actor does with the arbiter's bars.
 * - The clock (a ManualClock) reads the bar's close (start + bar size; for 1Day bars the session's close) while it
 *   is handled: a strategy sees a bar only once it has closed, and risk's session rule and the
 *   order's createdAt see the time a live trader would see first.
 * - Orders fill in the PaperBroker as live paper orders do: market orders at the next bar's open
 *   moved by the slippage, with the per-share commission and its minimum.
 * - Protective exits (`exits`) go on every entry as a bracket, as trader.exits does live, and with
 *   `calendar: 'nyse'` day orders end at the session close as the live paper broker ends them.
 * - Client order ids are the live ones (strategy, symbol, bar start, index), so a backtest over
 *   the bars a live session traded names its orders the same.
 *
 * One difference on purpose: live, a strategy that throws (or returns a malformed signal) only has
 * its symbol paused; a backtest with a paused symbol would report numbers that mean nothing, so
 * the run fails with the loop's reason instead (a sweep then reports that combination failed).
 */
import type { Broker, BrokerEvent } from '../actors/trader/broker.ts';
import { newYorkDay } from '../actors/trader/ledger.ts';
import { type Decision, OrderManager } from '../actors/trader/order-manager.ts';
import type { ExitSettings } from '../actors/trader/order-types.ts';
import type { TraderLog } from '../actors/trader/orders.ts';
import { PaperBroker } from '../actors/trader/paper-broker.ts';
import { RiskEngine } from '../actors/trader/risk.ts';
import type { Signal } from '../actors/trader/strategies/contract.ts';
import { TradingLoop } from '../actors/trader/trading-loop.ts';
import type { Bar } from '../market/bar.ts';
import { barSizeMs } from '../market/bar-size.ts';
import { MarketCalendar } from '../market/calendar.ts';
import { ManualClock } from '../market/clock.ts';
import { dailyClose, failOnStrategyTrouble, seedPositions } from './engine-support.ts';
import type { DailyRow, EngineInput, EngineResult, FillRow, SymbolTally } from './engine-types.ts';
import { MemoryCheckpoints, MemoryJournal } from './memory-stores.ts';

export { BacktestError, type BacktestErrorCode, type BrokerSettings, type DailyRow, type DecisionRow, type EngineInput, type EngineResult, type FillRow, type SymbolTally } from './engine-types.ts';

const SILENT: TraderLog = { info() {}, warn() {}, error() {}, isLevelEnabled: () => false };

/** An OrderManager that tells the replay what became of each signal. Same code; one hook after it. */
class ObservedOrderManager extends OrderManager {
  observer: ((d: Decision) => void) | undefined;
  override decideNow(signal: Signal, strategy: string, barStart: number, index: number, exits?: ExitSettings): Decision | Promise<Decision> {
    const d = super.decideNow(signal, strategy, barStart, index, exits);
    const observer = this.observer;
    if (observer === undefined) return d;
    if (d instanceof Promise) {
      return d.then((decided) => {
        observer(decided);
        return decided;
      });
    }
    observer(d);
    return d;
  }
}

/** Runs the bars through the live trading objects; rejects with BacktestError when the strategy fails. */
export async function runEngine(input: EngineInput): Promise<EngineResult> {
  const { barSize, symbols } = input;
  const sizeMs = barSizeMs(barSize);
  const calendar = new MarketCalendar();
  const all = symbols.map((s) => input.bars.get(s) ?? []);
  const total = all.reduce((n, b) => n + b.length, 0);
  let firstStart = Infinity;
  for (const b of all) if (b.length > 0 && b[0].start < firstStart) firstStart = b[0].start;
  const clock = new ManualClock(Number.isFinite(firstStart) ? firstStart : 0);

  const log = input.log ?? SILENT;
  const journal = new MemoryJournal();
  const checkpoints = new MemoryCheckpoints();
  if (input.initial) await seedPositions(journal, checkpoints, input.initial, clock.now() - 1);
  const broker: Broker = new PaperBroker({
    checkpoints,
    clock,
    startingCash: input.broker.startingCash,
    slippageBps: input.broker.slippageBps,
    commissionPerShare: input.broker.commissionPerShare,
    minCommission: input.broker.minCommission,
    ...(input.calendar === 'nyse' ? { calendar } : {}),
    // The run's fills are read from the journal; the broker's own lists need not grow with it.
    fillHistory: 16,
    idHistory: 16,
  });
  const risk = new RiskEngine(input.risk, calendar);
  const orders = new ObservedOrderManager({ journal, broker, risk, clock, log });
  await orders.start();

  // Positions and cash flows per symbol from the broker's fills, for equity and P&L per bar.
  const idx = new Map<string, number>();
  symbols.forEach((s, i) => {
    idx.set(s, i);
  });
  const qty = new Float64Array(symbols.length);
  const flow = new Float64Array(symbols.length);
  const last = new Float64Array(symbols.length).fill(NaN);
  const fills: FillRow[] = [];
  // An opening position counts at its cost: P&L starts at zero.
  let openingValue = 0;
  for (const [symbol, p] of Object.entries(input.initial?.positions ?? {})) {
    const i = idx.get(symbol);
    if (i === undefined || p.qty === 0) continue;
    qty[i] = p.qty;
    flow[i] = -p.qty * p.avgPrice;
    openingValue += p.qty * p.avgPrice;
  }
  broker.onEvent((e: BrokerEvent) => {
    if (e.type !== 'fill') return;
    const f = e.fill;
    const i = idx.get(f.symbol);
    if (i === undefined) return;
    const signed = f.side === 'buy' ? f.qty : -f.qty;
    qty[i] += signed;
    flow[i] += -signed * f.price - f.commission;
    fills.push({ time: f.time, symbol: f.symbol, side: f.side, qty: f.qty, price: f.price, commission: f.commission, clientOrderId: f.clientOrderId, execId: f.execId });
  });

  let strategy = input.strategy;
  let pendingSignals: Signal[] = [];
  let pendingDecisions: Decision[] = [];
  if (input.onDecision) {
    const inner = input.strategy;
    strategy = {
      name: inner.name,
      warmUp: (symbol, bars) => inner.warmUp(symbol, bars),
      onBar: (symbol, bar, ctx) => {
        const out = inner.onBar(symbol, bar, ctx);
        pendingSignals = out === undefined ? [] : Array.isArray(out) ? [...out] : [out];
        return out;
      },
    };
    orders.observer = (d) => pendingDecisions.push(d);
  }
  const loop = new TradingLoop({ strategy, risk, orders, clock, log, ...(input.exits ? { exits: input.exits } : {}) });
  if (input.warmup) for (const s of symbols) loop.warmUp(s, input.warmup.get(s) ?? []);
  failOnStrategyTrouble(loop);

  const tally: Record<string, SymbolTally> = {};
  for (const s of symbols) tally[s] = { bars: 0, barsHeld: 0 };
  const start = (input.initial?.cash ?? input.broker.startingCash) + openingValue;
  const replay = new Replay({
    all,
    symbols,
    tallies: symbols.map((s) => tally[s]),
    qty,
    flow,
    last,
    start,
    openingValue,
    calendar,
    clock,
    loop,
    barSize,
    sizeMs,
    every: input.progressEvery ?? 10_000,
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
    ...(input.onDecision
      ? {
          onBarDone: (bar: Bar, at: number) => {
            input.onDecision!({ bar, at, signals: pendingSignals, decisions: pendingDecisions });
            pendingSignals = [];
            pendingDecisions = [];
          },
        }
      : {}),
  });
  // Bars run on return until one has to wait (a broker or journal with promises); then it is awaited.
  for (let waiting = replay.run(); waiting !== undefined; waiting = replay.run()) await waiting;
  replay.closeDay();
  await orders.idle();
  input.onProgress?.(replay.done, total);
  const { points, curveTime, curveEquity } = replay;

  const positions: EngineResult['positions'] = {};
  for (const p of orders.positions()) {
    if (p.qty === 0) continue;
    const i = idx.get(p.symbol);
    positions[p.symbol] = { qty: p.qty, avgPrice: p.avgPrice, lastPrice: i === undefined || Number.isNaN(last[i]) ? null : last[i] };
  }
  const journaled = journal.all();
  return {
    barSize,
    symbols: [...symbols],
    startingCash: start,
    orders: journaled,
    fills,
    curve: { time: curveTime.subarray(0, points), equity: curveEquity.subarray(0, points) },
    daily: replay.daily,
    tally,
    timesHeld: replay.timesHeld,
    finalCash: broker.cash?.() ?? start,
    finalEquity: points > 0 ? curveEquity[points - 1] : start,
    positions,
    bars: replay.done,
    firstTime: Number.isNaN(replay.firstTime) ? null : replay.firstTime,
    lastTime: Number.isNaN(replay.lastTime) ? null : replay.lastTime,
    counters: {
      signals: loop.counters.signals,
      orders: journaled.length,
      refused: Object.values(orders.counters.refused).reduce((a, b) => a + b, 0),
      fills: fills.length,
    },
  };
}

interface ReplayParts {
  /** Bars per symbol, in the order of `symbols` (the tie-break order). */
  all: ReadonlyArray<readonly Bar[]>;
  symbols: readonly string[];
  tallies: SymbolTally[];
  /** Per symbol: position, cash flow and last close, kept by the broker's fill events. */
  qty: Float64Array;
  flow: Float64Array;
  last: Float64Array;
  start: number;
  openingValue: number;
  calendar: MarketCalendar;
  clock: ManualClock;
  loop: TradingLoop;
  barSize: string;
  sizeMs: number;
  every: number;
  onProgress?: (done: number, total: number) => void;
  onBarDone?: (bar: Bar, at: number) => void;
}

/**
 * The merge of all symbols' bars in time order and the bookkeeping after each bar (equity curve,
 * days, tallies). A class rather than closures in the async runEngine, so the per-bar state sits
 * in fields: no context slots, no promise unless a bar must wait.
 */
class Replay {
  readonly curveTime: Float64Array;
  readonly curveEquity: Float64Array;
  points = 0;
  done = 0;
  timesHeld = 0;
  /** First and last bar close handled; NaN before any (number fields, updated in place per bar). */
  firstTime = NaN;
  lastTime = NaN;
  readonly daily: DailyRow[] = [];
  private readonly total: number;
  private readonly cursor: Int32Array;
  private dayEnd = -Infinity;
  private dayDate = '';
  /** A bar time handled whose curve point is not written yet, and its start. */
  private open = false;
  private openStart = 0;
  /** The close of the bar being handled (a field, not an argument: a double argument is boxed). */
  private closeAt = 0;

  constructor(private readonly p: ReplayParts) {
    this.total = p.all.reduce((n, b) => n + b.length, 0);
    // One point per distinct bar time, at most one per bar: allocated once, not grown bar by bar.
    this.curveTime = new Float64Array(this.total);
    this.curveEquity = new Float64Array(this.total);
    this.cursor = new Int32Array(p.all.length);
  }

  /** Handles bars until all are done (undefined) or one has to wait: then the promise of its end. */
  run(): Promise<void> | undefined {
    const { all, loop, clock, calendar, sizeMs } = this.p;
    const cursor = this.cursor;
    const daily = this.p.barSize === '1Day';
    for (;;) {
      // Next bar in time order across symbols (few symbols: a scan beats a heap).
      let k = -1;
      let best = Infinity;
      for (let i = 0; i < all.length; i++) {
        const b = all[i];
        const c = cursor[i];
        if (c < b.length && b[c].start < best) {
          best = b[c].start;
          k = i;
        }
      }
      // The previous bar time is complete once the next bar starts later (or none is left): its curve point.
      if (this.open && (k < 0 || best !== this.openStart)) this.point();
      if (k < 0) return undefined;
      const bar = all[k][cursor[k]++];
      const closeAt = daily ? dailyClose(calendar, bar.start, sizeMs) : bar.start + sizeMs;
      // The day a bar belongs to is the day of its close (its last millisecond).
      if (closeAt - 1 >= this.dayEnd) {
        this.closeDay();
        this.dayEnd = newYorkDay(closeAt - 1).end;
        this.dayDate = calendar.dateOf(closeAt - 1);
      }
      clock.set(closeAt);
      this.closeAt = closeAt;
      // The live loop's own bar path: done on return unless the broker or the journal must be awaited.
      const handling = loop.offer(bar);
      if (handling !== undefined) return handling.then(() => this.after(k, bar));
      this.after(k, bar);
    }
  }

  private after(k: number, bar: Bar): void {
    const { tallies } = this.p;
    const closeAt = this.closeAt;
    failOnStrategyTrouble(this.p.loop);
    this.p.last[k] = bar.close;
    tallies[k].bars++;
    this.p.onBarDone?.(bar, closeAt);
    if (Number.isNaN(this.firstTime)) this.firstTime = closeAt;
    this.lastTime = closeAt;
    this.open = true;
    this.openStart = bar.start;
    if (++this.done % this.p.every === 0) this.p.onProgress?.(this.done, this.total);
  }

  /** One curve point per bar time, once every symbol's bar of that time is in (before the next bar's fills). */
  private point(): void {
    const { qty, tallies } = this.p;
    let held = false;
    for (let i = 0; i < qty.length; i++) {
      if (qty[i] !== 0) {
        held = true;
        tallies[i].barsHeld++;
      }
    }
    if (held) this.timesHeld++;
    this.curveTime[this.points] = this.lastTime;
    this.curveEquity[this.points++] = this.equityNow();
    this.open = false;
  }

  private equityNow(): number {
    const { qty, flow, last } = this.p;
    let eq = this.p.start;
    for (let i = 0; i < qty.length; i++) {
      eq += flow[i];
      if (qty[i] !== 0) eq += qty[i] * last[i];
    }
    return eq;
  }

  closeDay(): void {
    if (this.dayDate === '' || this.points === 0) return;
    const { qty, flow, last, symbols } = this.p;
    const pnl: Record<string, number> = {};
    let cash = this.p.start - this.p.openingValue;
    for (let i = 0; i < symbols.length; i++) {
      pnl[symbols[i]] = flow[i] + (qty[i] !== 0 ? qty[i] * last[i] : 0);
      cash += flow[i];
    }
    this.daily.push({ date: this.dayDate, equity: this.curveEquity[this.points - 1], cash, pnl });
  }
}
