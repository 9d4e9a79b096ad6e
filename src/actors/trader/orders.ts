/**
 * The order state machine and fill arithmetic, as pure functions over OrderRecord (the journal's
 * type). Every change returns a new record; the order manager journals it.
 *
 *   pending ──> submitted ──> partially_filled ──> filled
 *      │            │  │            │  ▲──┘
 *      │            │  └──> filled  └──> cancelled
 *      ├──> rejected├──> cancelled
 *      └──> cancelled└──> rejected
 *
 * Fills are keyed by the broker's execId: a fill seen twice (an event and then the same execution
 * in reconciliation) is applied once. A fill is never dropped: one that arrives for a pending order
 * implies the order was submitted; one that arrives after a final state (a late fill racing a
 * cancel) is recorded without changing the state, because the shares did change hands.
 */
import type { OrderFill, OrderRecord, OrderState } from '../../storage/types.ts';
import { BarkeepError } from '../../errors.ts';
import type { OrderErrorCode } from './protocol.ts';

export type { OrderErrorCode } from './protocol.ts';

export class OrderError extends BarkeepError<OrderErrorCode> {}

/** pino-compatible: `log.warn({ clientOrderId }, 'message')`. */
export interface TraderLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** Whether lines of `level` are kept (pino has it); lines nobody keeps are then not put into words. */
  isLevelEnabled?(level: string): boolean;
}

const NEXT: Record<OrderState, readonly OrderState[]> = {
  pending: ['submitted', 'rejected', 'cancelled'],
  submitted: ['partially_filled', 'filled', 'cancelled', 'rejected'],
  partially_filled: ['partially_filled', 'filled', 'cancelled'],
  filled: [],
  cancelled: [],
  rejected: [],
};

export function isFinal(state: OrderState): boolean {
  return state === 'filled' || state === 'cancelled' || state === 'rejected';
}

export function canTransition(from: OrderState, to: OrderState): boolean {
  return NEXT[from].includes(to);
}

/** Moves `record` to `to`; throws OrderError ORDER_ILLEGAL_TRANSITION when the machine forbids it. */
export function transition(record: OrderRecord, to: OrderState, at: number, patch?: Partial<Pick<OrderRecord, 'brokerOrderId' | 'rejectReason'>>): OrderRecord {
  if (!canTransition(record.state, to)) {
    throw new OrderError('ORDER_ILLEGAL_TRANSITION', `order ${record.clientOrderId} cannot go from ${record.state} to ${to}`);
  }
  // A spread copy takes assignments to its own fields cheaply, but a field it lacks costs V8 a
  // slow path (microseconds): copy with Object.assign when the patch adds one. Every event runs this.
  const adds = (patch?.brokerOrderId !== undefined && record.brokerOrderId === undefined) || (patch?.rejectReason !== undefined && record.rejectReason === undefined);
  const next: OrderRecord = adds ? Object.assign({}, record) : { ...record };
  if (patch?.brokerOrderId !== undefined) next.brokerOrderId = patch.brokerOrderId;
  if (patch?.rejectReason !== undefined) next.rejectReason = patch.rejectReason;
  next.state = to;
  next.updatedAt = at;
  return next;
}

export function hasFill(record: OrderRecord, execId: string): boolean {
  for (const f of record.fills) if (f.execId === execId) return true;
  return false;
}

export interface FillResult {
  record: OrderRecord;
  /** False when the execId was already recorded (the record is returned unchanged). */
  applied: boolean;
  /** Set when the fill came after a final state or took the order past its quantity. */
  anomaly?: 'late_fill' | 'overfill';
}

/** Records `fill` on `record` once (dedup by execId), updating quantity, average price, commission and state. */
export function applyFill(record: OrderRecord, fill: OrderFill, at: number): FillResult {
  if (!(fill.qty > 0) || !Number.isFinite(fill.price) || !Number.isFinite(fill.commission)) {
    throw new OrderError('ORDER_BAD_FILL', `fill ${fill.execId} for order ${record.clientOrderId} has qty ${fill.qty}, price ${fill.price}, commission ${fill.commission}`);
  }
  if (hasFill(record, fill.execId)) return { record, applied: false };
  const filledQty = record.filledQty + fill.qty;
  const avgFillPrice = record.filledQty === 0 ? fill.price : (record.avgFillPrice * record.filledQty + fill.price * fill.qty) / filledQty;
  let state = record.state;
  let anomaly: FillResult['anomaly'];
  if (isFinal(state)) {
    anomaly = state === 'filled' ? 'overfill' : 'late_fill';
  } else {
    state = filledQty >= record.qty ? 'filled' : 'partially_filled';
    if (filledQty > record.qty) anomaly = 'overfill';
  }
  const next: OrderRecord = { ...record };
  next.state = state;
  next.filledQty = filledQty;
  next.avgFillPrice = avgFillPrice;
  next.commission = record.commission + fill.commission;
  next.fills = record.fills.concat(fill);
  next.updatedAt = at;
  return anomaly === undefined ? { record: next, applied: true } : { record: next, applied: true, anomaly };
}

/** Shares still working at the broker: signed (+buy, -sell), zero once final. */
export function signedRemaining(record: OrderRecord): number {
  if (isFinal(record.state)) return 0;
  const left = Math.max(0, record.qty - record.filledQty);
  return record.side === 'buy' ? left : -left;
}
