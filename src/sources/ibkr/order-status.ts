/**
 * TWS's order dialect, normalised for the broker: order status strings as phases, order error
 * codes as what they mean for the order, IB order types as ours. See docs/tws-protocol.md.
 */
import { orderKindOf, type IbkrOrderKind } from './order-mapping.ts';

/** Where an IB order is in its life. */
export type IbOrderPhase =
  | 'working' // ApiPending, PendingSubmit, PreSubmitted, Submitted, PendingCancel
  | 'filled'
  | 'cancelled' // Cancelled, ApiCancelled
  | 'inactive' // IB will not work it (refused, or held for a reason it gives in an error)
  | 'other'; // a status this adapter does not know

const WORKING = new Set(['ApiPending', 'PendingSubmit', 'PreSubmitted', 'Submitted', 'PendingCancel']);
const CANCELLED = new Set(['Cancelled', 'ApiCancelled']);

export function orderPhase(status: string): IbOrderPhase {
  if (WORKING.has(status)) return 'working';
  if (status === 'Filled') return 'filled';
  if (CANCELLED.has(status)) return 'cancelled';
  if (status === 'Inactive') return 'inactive';
  return 'other';
}

/** IB works the order, or did and it filled: TWS has it. */
export function isAccepted(phase: IbOrderPhase): boolean {
  return phase === 'working' || phase === 'filled';
}

/** IB will do nothing more with the order. */
export function isFinished(phase: IbOrderPhase): boolean {
  return phase === 'filled' || phase === 'cancelled' || phase === 'inactive';
}

/** What an order error says about the order. */
export type IbOrderErrorKind =
  | 'refused' // 200, 201: IB will never work the order
  | 'duplicate-id' // 103: TWS did not take this order id; the order was not placed
  | 'not-cancellable' // 161, 10147, 10148: nothing to cancel
  | 'cancel-confirmed' // 202: the order was cancelled (a notice, not a failure)
  | 'other'; // any other error about the order (its text explains a following Cancelled/Inactive)

const REFUSED = new Set([200, 201]);
const NOT_CANCELLABLE = new Set([161, 10147, 10148]);

export function orderErrorKind(code: number): IbOrderErrorKind {
  if (REFUSED.has(code)) return 'refused';
  if (code === 103) return 'duplicate-id';
  if (NOT_CANCELLABLE.has(code)) return 'not-cancellable';
  if (code === 202) return 'cancel-confirmed';
  return 'other';
}

/** The reason text for an IB error about an order. */
export function ibReason(code: number, message: string): string {
  return `IB ${code}: ${message}`;
}

/** IB's order type as ours (order-mapping.ts); one we never place reads as market. */
export function orderTypeOf(ibType: string): IbkrOrderKind {
  return orderKindOf(ibType) ?? 'market';
}
