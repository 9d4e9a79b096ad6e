/**
 * Order identity at IB: what the broker knows about each IB order, by IB order id and by our client
 * order id (IB's orderRef). Bounded: past `limit` orders the oldest finished ones are forgotten;
 * duplicates older than that are stopped by the order journal.
 */
import type { IbkrExecution, IbkrOpenOrder } from '../../sources/ibkr/order-client.ts';
import { orderPhase, orderTypeOf, type IbOrderPhase } from '../../sources/ibkr/order-status.ts';
import type { OrderSide, OrderType } from '../../storage/types.ts';

/** What the broker knows about one IB order. */
export interface KnownOrder {
  orderId: number;
  clientOrderId: string;
  symbol: string;
  side: OrderSide;
  qty: number;
  type: OrderType;
  limitPrice?: number;
  /** Last status phase seen (null before any). */
  phase: IbOrderPhase | null;
  filled: number;
  /** TWS has said something about it (status, open order or execution). */
  confirmed: boolean;
  /** Connection epoch it was placed on (0 when learned from TWS). */
  epoch: number;
  /** An `accepted` event was emitted, or the order was learned from TWS already working. */
  accepted: boolean;
  /** A cancelled or rejected event was emitted (or IB says it is finished). */
  final: boolean;
  rejectReason?: string;
  cancelRequested: boolean;
  lastError?: string;
  /** The first submit's acknowledgement, for a concurrent duplicate submit to share. */
  ack?: Promise<void>;
}

export class KnownOrders {
  private readonly byId = new Map<number, KnownOrder>();
  private readonly byRef = new Map<string, KnownOrder>();

  constructor(private readonly limit: number) {}

  get(orderId: number): KnownOrder | undefined {
    return this.byId.get(orderId);
  }

  byClientOrderId(ref: string): KnownOrder | undefined {
    return this.byRef.get(ref);
  }

  all(): KnownOrder[] {
    return [...this.byId.values()];
  }

  remember(known: KnownOrder): void {
    this.byId.set(known.orderId, known);
    this.byRef.set(known.clientOrderId, known);
    if (this.byId.size <= this.limit) return;
    // Oldest finished orders go first.
    for (const k of this.byId.values()) {
      if (this.byId.size <= this.limit) break;
      if (k.final || k.phase === 'filled') this.forget(k);
    }
  }

  forget(known: KnownOrder): void {
    this.byId.delete(known.orderId);
    if (this.byRef.get(known.clientOrderId) === known) this.byRef.delete(known.clientOrderId);
  }

  /** The order with this IB id, or one learned now from an orderRef TWS reported; marks it confirmed. */
  learn(orderId: number, ref: string, fields: Pick<KnownOrder, 'symbol' | 'side'> & Partial<KnownOrder>): KnownOrder | undefined {
    let known = this.byId.get(orderId);
    if (!known && ref) {
      const sameRef = this.byRef.get(ref);
      // An unconfirmed order of ours that TWS now reports under its id.
      if (sameRef && sameRef.orderId === orderId) known = sameRef;
    }
    if (!known) {
      if (!ref) return undefined;
      known = {
        orderId,
        clientOrderId: ref,
        qty: 0,
        type: 'market',
        phase: null,
        filled: 0,
        epoch: 0,
        accepted: true,
        final: false,
        cancelRequested: false,
        ...fields,
        confirmed: true,
      };
      this.remember(known);
    }
    known.confirmed = true;
    return known;
  }

  /** Learns TWS's open orders: their status, fills, and that they work. */
  learnOpen(rows: readonly IbkrOpenOrder[]): void {
    for (const r of rows) {
      const known = this.learn(r.orderId, r.clientOrderId, {
        symbol: r.symbol,
        side: r.side,
        qty: r.qty,
        type: orderTypeOf(r.type),
        ...(r.limitPrice !== undefined ? { limitPrice: r.limitPrice } : {}),
      });
      if (!known) continue;
      const phase = r.status ? orderPhase(r.status) : null;
      if (phase) known.phase = phase;
      if (r.filled !== undefined) known.filled = Math.max(known.filled, r.filled);
      if (phase === 'working') known.accepted = true;
    }
  }

  /** Learns the orders of TWS's executions; `onCommission` hears the commissions listed with them. */
  learnExecutions(rows: readonly IbkrExecution[], onCommission: (execId: string, commission: number) => void): void {
    for (const r of rows) {
      this.learn(r.orderId, r.orderRef, { symbol: r.symbol, side: r.side });
      if (r.commission !== undefined) onCommission(r.execId, r.commission);
    }
  }
}
