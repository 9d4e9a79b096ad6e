/**
 * The trading loop, bar by bar: the broker fills what is due at the bar's open, the strategy sees
 * the bar, and each signal goes through the order manager (sizing, risk, journal, broker).
 *
 * Isolation: a strategy that throws, or returns a malformed signal, for one symbol has that symbol
 * paused (logged, counted, shown in status) and none of that bar's signals traded; the other
 * symbols go on. A paused symbol's bars still reach the broker, so its working orders fill and its
 * position stays true. `resumeSymbol` lifts the pause.
 *
 * Bars are handled one at a time in arrival order, whoever calls onBar and however often, so a
 * decision always sees the positions and open orders left by the previous one. A bar no newer than
 * the symbol's last one (a resend, or the last warm-up bar again) is skipped and counted.
 *
 * The worker-thread shell (actor.ts) owns this object; nothing here knows about threads.
 */
import type { Bar } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import type { OrderRecord } from '../../storage/types.ts';
import type { LedgerPosition, PnlToday } from './ledger.ts';
import type { Decision, OrderCounters, Refusal } from './decisions.ts';
import type { OrderManager } from './order-manager.ts';
import type { ExitSettings } from './order-types.ts';
import type { TraderLog } from './orders.ts';
import { TraderError } from './protocol.ts';
import type { RiskEngine, RiskSnapshot } from './risk.ts';
import { type Signal, type Strategy, type StrategyContext, signalProblem } from './strategies/contract.ts';

export interface TradingLoopOptions {
  strategy: Strategy;
  risk: RiskEngine;
  orders: OrderManager;
  clock: Clock;
  log: TraderLog;
  /** Protective exits attached to every entry as a bracket (trader.exits, or the session's). */
  exits?: ExitSettings;
}

export interface PausedSymbol {
  symbol: string;
  reason: string;
  since: number;
}

export interface LastDecision {
  barStart: number;
  action: Decision['action'];
  clientOrderId?: string;
  detail?: string;
}

export interface TradingCounters {
  bars: number;
  /** Bars no newer than the symbol's last bar, skipped. */
  staleBars: number;
  /** Bars of paused symbols (still passed to the broker, not to the strategy). */
  pausedBars: number;
  signals: number;
  strategyErrors: number;
  invalidSignals: number;
  /** Decisions that threw (journal or broker failure); the loop went on. */
  decisionErrors: number;
}

export interface TradingStatus {
  strategy: string;
  lastBarTime?: number;
  positions: Array<LedgerPosition & { lastPrice?: number; unrealized?: number }>;
  openOrders: OrderRecord[];
  pnlToday: number;
  /** pnlToday in parts: realized (net of commissions), unrealized, commission. */
  pnl: PnlToday;
  /** Broker cash when it reports it (paper). */
  cash?: number;
  risk: RiskSnapshot & { recentRefusals: Refusal[] };
  pausedSymbols: PausedSymbol[];
  lastDecisions: Record<string, LastDecision>;
  /** Per symbol, the strategy's last signal, its reason, and what came of it. */
  lastSignals: Record<string, LastSignal>;
  counters: TradingCounters & { orders: OrderCounters };
}

export interface LastSignal {
  barStart: number;
  /** `target 10`, `buy 5 limit 101.5`. */
  signal: string;
  reason: string;
  /** none | duplicate | refused | submitted | rejected | unsent | error */
  action: string;
}

const DONE: Promise<void> = Promise.resolve();

function describeSignal(s: Signal): string {
  if (s.kind === 'target') return `target ${s.targetQty}`;
  return `${s.side} ${s.qty} ${s.type}${s.type === 'limit' ? ` ${s.limitPrice}` : ''}`;
}

export class TradingLoop {
  private readonly strategy: Strategy;
  private readonly risk: RiskEngine;
  private readonly orders: OrderManager;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  readonly exits: ExitSettings | undefined;
  private readonly lastStart = new Map<string, { start: number }>();
  private readonly paused = new Map<string, PausedSymbol>();
  private readonly lastDecisions = new Map<string, LastDecision>();
  /** Per symbol, the last signal as the strategy gave it: put into words only when status asks. */
  private readonly lastSignals = new Map<string, { barStart: number; signal: Signal; action: string }>();
  private readonly ctx: StrategyContext = { position: 0, cash: NaN, now: 0 };
  private readonly infoLogged: boolean;
  private queue: Promise<void> = DONE;
  /** Bars handed in whose handling has not finished (waiting for the broker or the journal). */
  private inFlight = 0;
  /** NaN until the first bar (a number field: V8 updates it in place, no allocation per bar). */
  private lastBarTime = NaN;
  readonly counters: TradingCounters = { bars: 0, staleBars: 0, pausedBars: 0, signals: 0, strategyErrors: 0, invalidSignals: 0, decisionErrors: 0 };

  constructor(opts: TradingLoopOptions) {
    if (opts.orders.risk !== opts.risk) {
      throw new TraderError('TRADER_WIRING', 'TradingLoop: risk must be the same RiskEngine the OrderManager checks with');
    }
    this.strategy = opts.strategy;
    this.risk = opts.risk;
    this.orders = opts.orders;
    this.clock = opts.clock;
    this.log = opts.log;
    this.exits = opts.exits;
    this.infoLogged = opts.log.isLevelEnabled?.('info') !== false;
  }

  /** Gives the strategy its history for `symbol`, oldest first. A throw pauses the symbol. */
  warmUp(symbol: string, bars: readonly Bar[]): void {
    try {
      this.strategy.warmUp(symbol, bars);
    } catch (err) {
      this.isolate(symbol, err, 'warmUp');
      return;
    }
    if (bars.length > 0) {
      const newest = bars[bars.length - 1].start;
      const last = this.lastStart.get(symbol);
      if (!last) this.lastStart.set(symbol, { start: newest });
      else if (newest > last.start) last.start = newest;
    }
  }

  /** Handles one bar; resolves once its orders are decided (journaled and handed to the broker). Never rejects. */
  onBar(bar: Bar): Promise<void> {
    return this.offer(bar) ?? DONE;
  }

  /**
   * onBar without a promise when it needs none: a bar that arrives with nothing in flight and
   * leads to no journal write or broker call (most bars: the target is already held) is handled
   * before this returns, and undefined is returned. Otherwise the promise onBar would return.
   */
  offer(bar: Bar): Promise<void> | undefined {
    if (this.inFlight === 0) {
      let p: Promise<void> | undefined;
      try {
        p = this.handle(bar);
      } catch (err) {
        this.failed(bar, err);
        return undefined;
      }
      return p === undefined ? undefined : this.hold(p, bar);
    }
    return this.hold(
      this.queue.then(() => this.handle(bar)),
      bar,
    );
  }

  /** Resolves once every bar handed in so far is handled (its orders decided). */
  idle(): Promise<void> {
    return this.inFlight === 0 ? DONE : this.queue;
  }

  /** Makes `p` the queue's tail: bars offered meanwhile wait for it. */
  private hold(p: Promise<void>, bar: Bar): Promise<void> {
    this.inFlight++;
    // A failure is logged here, so one bad bar cannot leave the queue rejected for every later bar.
    const run = p.then(
      () => {
        this.inFlight--;
      },
      (err: unknown) => {
        this.inFlight--;
        this.failed(bar, err);
      },
    );
    this.queue = run;
    return run;
  }

  private failed(bar: Bar, err: unknown): void {
    this.counters.decisionErrors++;
    this.log.error({ symbol: bar.symbol, barStart: bar.start, err }, 'bar could not be handled');
  }

  pause(symbol: string, reason: string): void {
    if (!this.paused.has(symbol)) this.paused.set(symbol, { symbol, reason, since: this.clock.now() });
  }

  resumeSymbol(symbol: string): boolean {
    const was = this.paused.delete(symbol);
    if (was) this.log.info({ symbol }, 'symbol resumed');
    return was;
  }

  status(): TradingStatus {
    const positions = this.orders.positions().map((p) => {
      const lastPrice = this.orders.lastPrice(p.symbol);
      return lastPrice === undefined ? p : { ...p, lastPrice, unrealized: (lastPrice - p.avgPrice) * p.qty };
    });
    const cash = this.orders.broker.cash?.();
    const pnl = this.orders.pnlTodayParts();
    return {
      strategy: this.strategy.name,
      ...(Number.isNaN(this.lastBarTime) ? {} : { lastBarTime: this.lastBarTime }),
      positions,
      openOrders: this.orders.openOrders(),
      pnlToday: pnl.total,
      pnl,
      ...(cash !== undefined ? { cash } : {}),
      risk: { ...this.risk.snapshot(this.clock.now()), recentRefusals: this.orders.recentRefusals() },
      pausedSymbols: [...this.paused.values()],
      lastDecisions: Object.fromEntries(this.lastDecisions),
      lastSignals: Object.fromEntries([...this.lastSignals].map(([symbol, l]) => [symbol, { barStart: l.barStart, signal: describeSignal(l.signal), reason: l.signal.reason, action: l.action }])),
      counters: { ...this.counters, orders: { ...this.orders.counters, refused: { ...this.orders.counters.refused } } },
    };
  }

  /** The bar's work; a promise only once something had to be awaited. */
  private handle(bar: Bar): Promise<void> | undefined {
    const symbol = bar.symbol;
    const last = this.lastStart.get(symbol);
    if (last !== undefined && bar.start <= last.start) {
      this.counters.staleBars++;
      return undefined;
    }
    if (last === undefined) this.lastStart.set(symbol, { start: bar.start });
    else last.start = bar.start;
    this.lastBarTime = bar.start;
    this.counters.bars++;
    let broker: Promise<void> | undefined;
    try {
      broker = this.orders.step(bar);
    } catch (err) {
      this.brokerFailed(bar, err);
    }
    if (broker === undefined) return this.decideBar(bar);
    return broker.then(
      () => this.decideBar(bar),
      (err: unknown) => {
        this.brokerFailed(bar, err);
        return this.decideBar(bar);
      },
    );
  }

  private brokerFailed(bar: Bar, err: unknown): void {
    this.counters.decisionErrors++;
    this.log.error({ symbol: bar.symbol, barStart: bar.start, err }, 'broker could not process the bar');
  }

  /** The strategy sees the bar once the broker has; its signals are decided in order. */
  private decideBar(bar: Bar): Promise<void> | undefined {
    const symbol = bar.symbol;
    if (this.paused.has(symbol)) {
      this.counters.pausedBars++;
      return undefined;
    }
    const ctx = this.ctx;
    ctx.position = this.orders.position(symbol);
    ctx.cash = this.orders.broker.cash?.() ?? NaN;
    ctx.now = this.clock.now();
    let out: Signal[] | Signal | undefined;
    try {
      out = this.strategy.onBar(symbol, bar, ctx);
    } catch (err) {
      this.isolate(symbol, err, 'onBar');
      return undefined;
    }
    if (out === undefined) return undefined;
    if (Array.isArray(out)) {
      for (const s of out) {
        const problem = signalProblem(s);
        if (problem) {
          this.rejectSignals(symbol, problem);
          return undefined;
        }
      }
      return this.decideFrom(out, bar, 0);
    }
    const problem = signalProblem(out);
    if (problem) {
      this.rejectSignals(symbol, problem);
      return undefined;
    }
    return this.decide(out, bar, 0);
  }

  private decideFrom(signals: readonly Signal[], bar: Bar, from: number): Promise<void> | undefined {
    for (let i = from; i < signals.length; i++) {
      const p = this.decide(signals[i], bar, i);
      if (p !== undefined) return p.then(() => this.decideFrom(signals, bar, i + 1));
    }
    return undefined;
  }

  private decide(signal: Signal, bar: Bar, index: number): Promise<void> | undefined {
    this.counters.signals++;
    let d: Decision | Promise<Decision>;
    try {
      d = this.orders.decideNow(signal, this.strategy.name, bar.start, index, this.exits);
    } catch (err) {
      this.decisionFailed(signal, bar, err);
      return undefined;
    }
    if (d instanceof Promise) {
      return d.then(
        (decided) => this.decided(signal, bar, decided),
        (err: unknown) => this.decisionFailed(signal, bar, err),
      );
    }
    this.decided(signal, bar, d);
    return undefined;
  }

  private noteSignal(signal: Signal, bar: Bar, action: string): void {
    const slot = this.lastSignals.get(signal.symbol);
    if (slot === undefined) this.lastSignals.set(signal.symbol, { barStart: bar.start, signal, action });
    else {
      slot.barStart = bar.start;
      slot.signal = signal;
      slot.action = action;
    }
  }

  private decisionFailed(signal: Signal, bar: Bar, err: unknown): void {
    this.counters.decisionErrors++;
    this.noteSignal(signal, bar, 'error');
    this.log.error({ symbol: signal.symbol, barStart: bar.start, err }, 'order decision failed');
  }

  private decided(signal: Signal, bar: Bar, d: Decision): void {
    this.noteSignal(signal, bar, d.action);
    // One line per signal a person can follow: what the strategy wanted, why, and what came of it
    // (put into words only when the log keeps info lines).
    if (this.infoLogged) {
      this.log.info(
        {
          event: 'signal',
          symbol: signal.symbol,
          strategy: this.strategy.name,
          bar_start: new Date(bar.start).toISOString(),
          signal: describeSignal(signal),
          action: d.action,
          ...('clientOrderId' in d ? { client_order_id: d.clientOrderId } : {}),
        },
        `signal ${signal.symbol} ${describeSignal(signal)}: ${signal.reason} -> ${d.action}`,
      );
    }
    if (d.action === 'none') return;
    const entry: LastDecision = { barStart: bar.start, action: d.action, clientOrderId: d.clientOrderId };
    if (d.action === 'refused') entry.detail = `${d.rule}: ${d.reason}`;
    else if (d.action === 'rejected' || d.action === 'unsent') entry.detail = d.reason;
    this.lastDecisions.set(signal.symbol, entry);
    if (d.action === 'refused') this.log.info({ event: 'refusal', symbol: signal.symbol, rule: d.rule, client_order_id: d.clientOrderId }, `refused ${signal.symbol}: ${d.reason}`);
  }

  private rejectSignals(symbol: string, problem: string): void {
    this.counters.invalidSignals++;
    this.pause(symbol, `strategy ${this.strategy.name} returned a malformed signal: ${problem}`);
    this.log.error({ symbol, strategy: this.strategy.name, problem }, 'malformed signal; symbol paused');
  }

  private isolate(symbol: string, err: unknown, where: 'warmUp' | 'onBar'): void {
    this.counters.strategyErrors++;
    const message = err instanceof Error ? err.message : String(err);
    this.pause(symbol, `strategy ${this.strategy.name} threw in ${where}: ${message}`);
    this.log.error({ symbol, strategy: this.strategy.name, err }, `strategy threw in ${where}; symbol paused`);
  }
}
