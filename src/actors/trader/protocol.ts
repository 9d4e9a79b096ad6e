/**
 * The trading loop's contract. Control (main thread -> trader): start, stop, status, orders,
 * positions, kill, resume. Data: bar keys from the arbiter (see the arbiter's protocol).
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { OrderRecord, OrderRole, OrderType, TimeInForce } from '../../storage/types.ts';
import { BarkeepError } from '../../errors.ts';

export interface TraderConfig {
  dataDir: string;
  storage: { sourcePrecedence: string[] };
  autostart: LiveStart | null;
  strategyModule: string | null;
  paper: { startingCash: number; slippageBps: number; commissionPerShare: number; minCommission: number };
  risk: {
    maxPositionPerSymbol: number;
    maxOrderNotional: number;
    maxGrossExposure: number;
    maxDailyLoss: number;
    maxOrdersPerMinute: number;
    allowedSessions: Array<'pre' | 'regular' | 'post' | 'always'>;
  };
  /** trader.exits: protective exits for every entry, unless a POST /live/start gives its own. */
  exits?: ExitsBody | null;
  /** The simulated 24/7 market: every minute counts as the regular session. */
  alwaysOpen: boolean;
  ibkr: { host: string; port: number; clientId: number; reconnectInitialMs: number; reconnectMaxMs: number } | null;
}

export interface LiveStart {
  symbols: string[];
  bar_size: BarSize;
  strategy: string;
  strategy_params?: Record<string, unknown>;
  broker: 'paper' | 'ibkr';
  /** Protective exits for this session; absent: the configured trader.exits; null: none. */
  exits?: ExitsBody | null;
}

/** Exits as JSON and YAML spell them, in percent of the entry price. */
export interface ExitsBody {
  stop_loss_pct?: number | null;
  take_profit_pct?: number | null;
  trailing_stop_pct?: number | null;
}

export interface PositionView {
  symbol: string;
  qty: number;
  avg_price: number;
  last_price: number | null;
  market_value: number | null;
  unrealized_pnl: number | null;
}

export interface TraderStatus {
  is_running: boolean;
  symbols: string[];
  bar_size: BarSize | null;
  strategy: string | null;
  broker: 'paper' | 'ibkr' | null;
  last_bar_time: string | null;
  bars_collected: number;
  signals: number;
  positions: PositionView[];
  open_orders: OrderView[];
  pnl_today: { realized: number; unrealized: number; total: number };
  cash: number | null;
  risk: { killed: boolean; refusals: Record<string, number>; last_refusal: string | null };
  paused_symbols: Record<string, string>;
  strategy_errors: number;
  /** The protective exits attached to entries in this session (null: none). */
  exits: Record<string, number> | null;
}

export interface OrderView {
  client_order_id: string;
  broker_order_id: string | null;
  strategy: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  type: OrderType;
  limit_price: number | null;
  /** stop and stop_limit: the trigger; trailing_stop: the initial stop when one was given. */
  stop_price: number | null;
  /** trailing_stop: the distance kept from the best price. */
  trail: { amount: number } | { percent: number } | null;
  tif: TimeInForce;
  outside_rth: boolean;
  /** The legs of one bracket share it (the entry's client order id). */
  group_id: string | null;
  role: OrderRole | null;
  state: OrderRecord['state'];
  filled_qty: number;
  avg_fill_price: number | null;
  commission: number;
  reason: string;
  reject_reason: string | null;
  created_at: string;
  updated_at: string;
}

export type TraderRequests = {
  start: { req: LiveStart; res: TraderStatus };
  stop: { req: {}; res: TraderStatus };
  status: { req: {}; res: TraderStatus };
  orders: { req: {}; res: OrderView[] };
  positions: { req: {}; res: PositionView[] };
  kill: { req: { flatten: boolean }; res: TraderStatus };
  resume: { req: {}; res: TraderStatus };
};

/** Codes of the broker's errors (broker.ts). */
export type BrokerErrorCode =
  | 'BROKER_REJECTED' // the broker refused the order; it will never work
  | 'BROKER_UNAVAILABLE' // no answer: whether the order arrived is unknown
  | 'BROKER_STATE'; // the broker's persisted state could not be read or written

/** Codes of the order state machine's errors (orders.ts). */
export type OrderErrorCode =
  | 'ORDER_ILLEGAL_TRANSITION' // a state change the machine does not allow
  | 'ORDER_BAD_FILL'; // a fill with a non-positive quantity or a non-finite price

/** Codes of strategy loading errors (strategies/strategy-error.ts). */
export type StrategyErrorCode =
  | 'STRATEGY_UNKNOWN' // no built-in strategy by that name and no module given
  | 'STRATEGY_PARAMS' // a parameter failed validation
  | 'STRATEGY_MODULE'; // the user's module could not be loaded or its export is not a strategy factory

/** Every code a trader error carries (see src/errors.ts). */
export type TraderErrorCode =
  | 'BAD_REQUEST' // a control request's body is invalid; `field` names the key
  | 'TRADER_WIRING' // the trader's parts were put together wrongly (a programming error)
  | 'RISK_CONFIG' // risk limits that cannot be enforced
  | 'CLIENT_ORDER_ID_INPUT' // a client order id cannot be made from these inputs
  | BrokerErrorCode
  | OrderErrorCode
  | StrategyErrorCode;

/** A trader error without a class of its own (bad requests, wiring). */
export class TraderError extends BarkeepError<TraderErrorCode> {}
