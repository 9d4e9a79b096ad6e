/**
 * What the order manager needs from a broker. Two implementations: `paper` (paper-broker.ts) and
 * `ibkr` (backed by the IBKR order client in src/sources/ibkr).
 *
 * The one idea that makes crash-safety work: the client order id is the order's identity at the
 * broker too. IBKR carries it in `orderRef` (set on placeOrder, returned in openOrder and in every
 * execDetails), so after a restart `openOrders()` and `executions()` can be matched to the journal
 * by clientOrderId, whatever IB's own order ids became.
 *
 * Guarantees an implementation must give:
 * - `submit` is idempotent per clientOrderId: submitting an id the broker already knows (open,
 *   filled or cancelled) creates no second order and resolves with the existing brokerOrderId.
 *   (IBKR: look the orderRef up in open orders and today's executions before placeOrder.)
 * - `submit` resolves once the broker has the order. It rejects with BrokerError:
 *   `BROKER_REJECTED` when the broker refused the order (it will never be working), or
 *   `BROKER_UNAVAILABLE` when it is not known whether the order arrived (the manager leaves the
 *   order pending and reconciliation decides).
 * - Events are emitted after the broker's own state is durable (paper) or as the broker reports
 *   them (IBKR). A fill event and a later `executions()` listing of the same fill carry the same
 *   execId.
 * - `cancel` of an unknown or already final order resolves without effect.
 */
import type { Bar } from '../../market/bar.ts';
import type { OrderFill, OrderGroupLeg, OrderRecord, OrderSide, OrderTicket } from '../../storage/types.ts';
import { BarkeepError } from '../../errors.ts';
import type { BrokerErrorCode } from './protocol.ts';

export type { BrokerErrorCode } from './protocol.ts';

export type BrokerKind = 'paper' | 'ibkr';

/** An order the broker is still working. */
export interface BrokerOrder extends OrderTicket, OrderGroupLeg {
  clientOrderId: string;
  brokerOrderId: string;
  filledQty: number;
  state: 'submitted' | 'partially_filled';
}

/** One execution. IBKR: execDetails + commissionReport joined on execId; orderRef is clientOrderId. */
export interface BrokerFill extends OrderFill {
  clientOrderId: string;
  brokerOrderId: string;
  symbol: string;
  side: OrderSide;
}

export type BrokerEvent =
  | { type: 'accepted'; clientOrderId: string; brokerOrderId: string; time: number }
  | { type: 'fill'; clientOrderId: string; fill: BrokerFill }
  | { type: 'cancelled'; clientOrderId: string; time: number; reason?: string }
  | { type: 'rejected'; clientOrderId: string; time: number; reason: string };

export interface BrokerPosition {
  /** Signed shares. */
  qty: number;
  avgPrice: number;
}

export interface Broker {
  readonly kind: BrokerKind;
  submit(order: OrderRecord): Promise<{ brokerOrderId: string }>;
  /**
   * A bracket: the entry first, then its exits (groupId = the entry's id, role take_profit or
   * stop_loss), sent as one group. Idempotent per leg like submit; legs already known are not sent
   * again. The exits work only once the entry has filled and are one-cancels-other.
   */
  submitGroup?(orders: readonly OrderRecord[]): Promise<Array<{ clientOrderId: string; brokerOrderId: string }>>;
  cancel(clientOrderId: string): Promise<void>;
  openOrders(): Promise<BrokerOrder[]>;
  /** Executions at or after `sinceMs` (all the broker still has when omitted), oldest first. */
  executions(sinceMs?: number): Promise<BrokerFill[]>;
  onEvent(cb: (e: BrokerEvent) => void): void;
  /** Paper only: sees every bar first, and fills what is due at its open. Resolves once fills are durable and emitted. */
  onBar?(bar: Bar): Promise<void>;
  /**
   * Whether onBar has anything to do for `bar` (a working order of its symbol, or one to expire).
   * Lets the bar path skip the call, and its promise, on the many bars with nothing due; a broker
   * without it has onBar called on every bar.
   */
  barDue?(bar: Bar): boolean;
  /**
   * submit, submitGroup and onBar answered on return, by a broker whose state is durable on return
   * (paper on an in-memory checkpoint store: backtests). The same work, throwing where those
   * reject; a caller uses them when present and the promise forms otherwise.
   */
  submitNow?(order: OrderRecord): { brokerOrderId: string };
  submitGroupNow?(orders: readonly OrderRecord[]): Array<{ clientOrderId: string; brokerOrderId: string }>;
  onBarNow?(bar: Bar): void;
  positions(): Promise<Record<string, BrokerPosition>>;
  /** Paper only: cash balance. */
  cash?(): number;
}

export class BrokerError extends BarkeepError<BrokerErrorCode> {}
