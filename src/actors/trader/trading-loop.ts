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
  counters: TradingCounters & { orders: OrderCounters };
}

export class TradingLoop {
  private readonly strategy: Strategy;
  private readonly risk: RiskEngine;
  private readonly orders: OrderManager;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  readonly exits: ExitSettings | undefined;
  private readonly lastStart = new Map<string, number>();
  private readonly paused = new Map<string, PausedSymbol>();
  private readonly lastDecisions = new Map<string, LastDecision>();
  private readonly ctx: StrategyContext = { position: 0, cash: NaN, now: 0 };
  private queue: Promise<void> = Promise.resolve();
  private lastBarTime: number | undefined;
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
      if (newest > (this.lastStart.get(symbol) ?? -Infinity)) this.lastStart.set(symbol, newest);
    }
  }

  /** Handles one bar; resolves once its orders are decided (journaled and handed to the broker). Never rejects. */
  onBar(bar: Bar): Promise<void> {
    // A failure is logged here, so one bad bar cannot leave the queue rejected for every later bar.
    const run = this.queue
      .then(() => this.handle(bar))
      .catch((err: unknown) => {
        this.counters.decisionErrors++;
        this.log.error({ symbol: bar.symbol, barStart: bar.start, err }, 'bar could not be handled');
      });
    this.queue = run;
    return run;
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
      ...(this.lastBarTime !== undefined ? { lastBarTime: this.lastBarTime } : {}),
      positions,
      openOrders: this.orders.openOrders(),
      pnlToday: pnl.total,
      pnl,
      ...(cash !== undefined ? { cash } : {}),
      risk: { ...this.risk.snapshot(this.clock.now()), recentRefusals: this.orders.recentRefusals() },
      pausedSymbols: [...this.paused.values()],
      lastDecisions: Object.fromEntries(this.lastDecisions),
      counters: { ...this.counters, orders: { ...this.orders.counters, refused: { ...this.orders.counters.refused } } },
    };
  }

  private async handle(bar: Bar): Promise<void> {
    const symbol = bar.symbol;
    const last = this.lastStart.get(symbol);
    if (last !== undefined && bar.start <= last) {
      this.counters.staleBars++;
      return;
    }
    this.lastStart.set(symbol, bar.start);
    this.lastBarTime = bar.start;
    this.counters.bars++;
    try {
      await this.orders.onBar(bar);
    } catch (err) {
      this.counters.decisionErrors++;
      this.log.error({ symbol, barStart: bar.start, err }, 'broker could not process the bar');
    }
    if (this.paused.has(symbol)) {
      this.counters.pausedBars++;
      return;
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
      return;
    }
    if (out === undefined) return;
    if (Array.isArray(out)) {
      for (const s of out) {
        const problem = signalProblem(s);
        if (problem) return this.rejectSignals(symbol, problem);
      }
      for (let i = 0; i < out.length; i++) await this.decide(out[i], bar, i);
    } else {
      const problem = signalProblem(out);
      if (problem) return this.rejectSignals(symbol, problem);
      await this.decide(out, bar, 0);
    }
  }

  private async decide(signal: Signal, bar: Bar, index: number): Promise<void> {
    this.counters.signals++;
    let d: Decision;
    try {
      d = await this.orders.decide(signal, { strategy: this.strategy.name, barStart: bar.start, index, ...(this.exits ? { exits: this.exits } : {}) });
    } catch (err) {
      this.counters.decisionErrors++;
      this.log.error({ symbol: signal.symbol, barStart: bar.start, err }, 'order decision failed');
      return;
    }
    if (d.action === 'none') return;
    const entry: LastDecision = { barStart: bar.start, action: d.action, clientOrderId: d.clientOrderId };
    if (d.action === 'refused') entry.detail = `${d.rule}: ${d.reason}`;
    else if (d.action === 'rejected' || d.action === 'unsent') entry.detail = d.reason;
    this.lastDecisions.set(signal.symbol, entry);
    if (d.action === 'refused') this.log.info({ symbol: signal.symbol, rule: d.rule, clientOrderId: d.clientOrderId }, d.reason);
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
