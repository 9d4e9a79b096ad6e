/**
 * Event mapping for the ibkr broker: TWS's order statuses, order errors and executions (normalised
 * by src/sources/ibkr) become BrokerEvents, emitted per order in the order TWS sent them. A status
 * that comes after a fill still waiting for its commission waits behind it, so a cancel after a
 * partial fill never reaches the order manager before that fill.
 */
import type { Clock } from '../../market/clock.ts';
import type { CommissionJoin, IbFill } from '../../sources/ibkr/commission-join.ts';
import type { IbRequestError } from '../../sources/ibkr/connection.ts';
import type { IbkrExecution } from '../../sources/ibkr/order-client.ts';
import { ibReason, isAccepted, orderErrorKind, orderPhase } from '../../sources/ibkr/order-status.ts';
import type { BrokerEvent, BrokerFill } from './broker.ts';
import type { KnownOrders } from './ibkr-known-orders.ts';
import type { OrderSignal, OrderWaits } from './ibkr-order-waits.ts';
import type { TraderLog } from './orders.ts';

export class IbkrEventMapper {
  /** Fill events emitted. */
  fills = 0;
  private readonly listeners: Array<(e: BrokerEvent) => void> = [];
  /** Per clientOrderId: the tail of its event chain while one is waiting. */
  private readonly chains = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly orders: KnownOrders,
    private readonly commissions: CommissionJoin,
    private readonly waits: OrderWaits,
    private readonly clock: Clock,
    private readonly log: TraderLog,
  ) {}

  onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }

  /** No event is emitted after this. */
  close(): void {
    this.closed = true;
  }

  /** Keeps the text of any error about one of our orders (110 price increment, 10349, ...) as the reason a following Cancelled/Inactive status gives. */
  onRequestError(e: IbRequestError): void {
    const known = this.orders.get(e.reqId);
    if (known && e.policy.kind !== 'info') known.lastError = ibReason(e.code, e.message);
  }

  onStatus(orderId: number, status: string, filled: number): void {
    const known = this.orders.get(orderId);
    if (!known) return; // not ours, or learned later from openOrders()/executions() in reconcile
    const phase = orderPhase(status);
    known.phase = phase;
    known.filled = Math.max(known.filled, filled);
    known.confirmed = true;
    const id = known.clientOrderId;
    const now = this.clock.now();
    if (isAccepted(phase) && !known.accepted && !known.final) {
      known.accepted = true;
      this.emitInOrder(id, { type: 'accepted', clientOrderId: id, brokerOrderId: String(orderId), time: now });
    } else if ((phase === 'cancelled' || phase === 'inactive') && !known.final) {
      known.final = true;
      if (phase === 'inactive' || !known.accepted) {
        // It never worked: IB refused it.
        known.rejectReason = known.lastError ?? `IB set the order ${status}`;
        this.emitInOrder(id, { type: 'rejected', clientOrderId: id, time: now, reason: known.rejectReason });
      } else {
        const reason = known.cancelRequested ? 'cancel requested' : (known.lastError ?? 'cancelled at IB');
        this.emitInOrder(id, { type: 'cancelled', clientOrderId: id, time: now, reason });
      }
    }
    this.waits.signal(orderId, { kind: 'status', phase, status });
  }

  onOrderError(orderId: number, code: number, message: string): void {
    const known = this.orders.get(orderId);
    const error = orderErrorKind(code);
    if (known) {
      if (error !== 'cancel-confirmed') known.lastError = ibReason(code, message);
      if (error === 'refused' && !known.final) {
        known.final = true;
        known.rejectReason = ibReason(code, message);
        this.emitInOrder(known.clientOrderId, { type: 'rejected', clientOrderId: known.clientOrderId, time: this.clock.now(), reason: known.rejectReason });
      } else if (error === 'duplicate-id' && !known.confirmed) {
        // TWS did not take this order id, so the order was not placed.
        this.orders.forget(known);
      }
    }
    this.waits.signal(orderId, { kind: 'error', error, code, message } satisfies OrderSignal);
  }

  onExecution(x: IbkrExecution): void {
    const known = this.orders.learn(x.orderId, x.orderRef, { symbol: x.symbol, side: x.side });
    this.waits.signal(x.orderId, { kind: 'execution' });
    if (!known) {
      this.log.warn({ execId: x.execId, orderId: x.orderId }, 'execution of an order with no orderRef: not one of ours');
      return;
    }
    const id = known.clientOrderId;
    if (!known.accepted && !known.final) {
      known.accepted = true;
      this.emitInOrder(id, { type: 'accepted', clientOrderId: id, brokerOrderId: String(x.orderId), time: this.clock.now() });
    }
    const row: IbkrExecution = { ...x, orderRef: id };
    this.emitInOrder(
      id,
      this.commissions.fill(row, this.commissions.known(x.execId)).then((f): BrokerEvent => {
        this.fills++;
        return { type: 'fill', clientOrderId: id, fill: this.toBrokerFill(f) };
      }),
    );
  }

  toBrokerFill(f: IbFill): BrokerFill {
    return {
      execId: f.execId,
      qty: f.qty,
      price: f.price,
      time: f.time,
      commission: f.commission,
      clientOrderId: f.orderRef || (this.orders.get(f.orderId)?.clientOrderId ?? ''),
      brokerOrderId: String(f.orderId),
      symbol: f.symbol,
      side: f.side,
    };
  }

  /** Emits events of one order in arrival order, a pending one (a fill awaiting its commission) holding up the rest. */
  private emitInOrder(id: string, event: BrokerEvent | Promise<BrokerEvent>): void {
    const prev = this.chains.get(id);
    if (!prev && !(event instanceof Promise)) {
      this.emit(event);
      return;
    }
    const next = (prev ?? Promise.resolve())
      .then(() => event)
      .then(
        (e) => this.emit(e),
        (err: unknown) => this.log.error({ clientOrderId: id, err }, 'a broker event could not be built'),
      );
    this.chains.set(id, next);
    void next.finally(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
  }

  private emit(e: BrokerEvent): void {
    if (this.closed) return;
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch (err) {
        this.log.error({ event: e.type, clientOrderId: e.clientOrderId, err }, 'broker event listener failed');
      }
    }
  }
}
