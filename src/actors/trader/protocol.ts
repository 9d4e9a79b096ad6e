/**
 * The trading loop's contract. Control (main thread -> trader): start, stop, status, orders,
 * positions, kill, resume. Data: bar keys from the arbiter (see the arbiter's protocol).
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { OrderRecord, OrderRole, OrderType, TimeInForce } from '../../storage/types.ts';

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
  /** Cluster mode: every order goes through the order fence on NATS JetStream before the broker. */
  cluster?: { natsUrl: string; nodeId: string; leaseTtlMs: number } | null;
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
