/**
 * The backtest engine's inputs and results (engine.ts runs them), and its error.
 */
import type { Decision } from '../actors/trader/order-manager.ts';
import type { ExitSettings } from '../actors/trader/order-types.ts';
import type { TraderLog } from '../actors/trader/orders.ts';
import type { RiskConfigInput } from '../actors/trader/risk.ts';
import type { Signal, Strategy } from '../actors/trader/strategies/contract.ts';
import type { Bar } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import type { OrderRecord } from '../storage/types.ts';
import { BarkeepError } from '../errors.ts';

export interface BrokerSettings {
  startingCash: number;
  slippageBps: number;
  commissionPerShare: number;
  minCommission: number;
}

export interface EngineInput {
  strategy: Strategy;
  /** Symbols in tie-break order. */
  symbols: readonly string[];
  barSize: BarSize;
  /** Bars per symbol, oldest first, all of `barSize`. */
  bars: ReadonlyMap<string, readonly Bar[]>;
  /** Bars handed to the strategy's warmUp before the run, per symbol (as the arbiter's preload). */
  warmup?: ReadonlyMap<string, readonly Bar[]>;
  broker: BrokerSettings;
  risk: RiskConfigInput;
  /** Called every `progressEvery` bars with (bars done, bars in all). */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
  /** Called for every bar the strategy saw, with what it said and what became of it (replays). */
  onDecision?: (row: DecisionRow) => void;
  /** Receives the loop's log lines; silent when omitted. */
  log?: TraderLog;
  /** Protective exits attached to every entry as a bracket, as `trader.exits` does live. */
  exits?: ExitSettings;
  /**
   * What ends `day` orders: 'nyse', the session close by the NYSE calendar (early closes at 13:00
   * included), as the live paper broker on a real market; 'none' (default), the 24/7 simulated
   * market's, where they do not expire.
   */
  calendar?: 'nyse' | 'none';
  /**
   * Positions held when the run starts (a replay from the middle of a live session), and the cash
   * beside them (default broker.startingCash). They are put in the broker's state and journaled as
   * filled opening orders, so the order manager starts from them as a restarted trader would.
   */
  initial?: { cash: number; positions: Record<string, { qty: number; avgPrice: number }> };
}

export interface DecisionRow {
  bar: Bar;
  /** Clock time the decision was taken at (the bar's close). */
  at: number;
  signals: Signal[];
  decisions: Decision[];
}

export interface FillRow {
  time: number;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
  commission: number;
  clientOrderId: string;
  execId: string;
}

export interface DailyRow {
  /** New York date, YYYY-MM-DD. */
  date: string;
  /** Equity at the day's last bar. */
  equity: number;
  cash: number;
  /** Cumulative P&L per symbol (realized + unrealized - commissions) at the day's last bar. */
  pnl: Record<string, number>;
}

export interface SymbolTally {
  bars: number;
  /** Bars after which the symbol's position was not flat. */
  barsHeld: number;
}

export interface EngineResult {
  barSize: BarSize;
  symbols: string[];
  startingCash: number;
  orders: OrderRecord[];
  fills: FillRow[];
  /** Equity after each distinct bar time: times are bar closes. */
  curve: { time: Float64Array; equity: Float64Array };
  daily: DailyRow[];
  tally: Record<string, SymbolTally>;
  /** Bars after which any position was open, out of all bar times. */
  timesHeld: number;
  finalCash: number;
  finalEquity: number;
  positions: Record<string, { qty: number; avgPrice: number; lastPrice: number | null }>;
  bars: number;
  firstTime: number | null;
  lastTime: number | null;
  counters: { signals: number; orders: number; refused: number; fills: number };
}

export type BacktestErrorCode = 'BACKTEST_STRATEGY_FAILED' | 'BACKTEST_NO_BARS' | 'BACKTEST_INPUT';

export class BacktestError extends BarkeepError<BacktestErrorCode> {
  constructor(code: BacktestErrorCode, message: string, opts?: { field?: string; cause?: unknown }) {
    super(code, message, { ...(opts?.field ? { field: opts.field } : {}), ...(opts?.cause !== undefined ? { cause: opts.cause } : {}) });
  }
}
