/**
 * Cluster mode's guard on the order path: every order is appended to its symbol's subject in
 * BARKEEP_ORDERS through the order fence before the broker sees it. A node that lost the symbol's
 * lease (frozen, partitioned, or still resuming a session it no longer owns) cannot append, so the
 * order is refused here and never sent; the journal keeps it as rejected with the reason.
 * Everything else is the wrapped broker's.
 */
import type { Bar } from '../../market/bar.ts';
import type { OrderRecord } from '../../storage/types.ts';
import { FencedError } from '../../cluster/errors.ts';
import type { OrderFence } from '../../cluster/order-fence.ts';
import { BrokerError, type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition } from './broker.ts';

export class FencedBroker implements Broker {
  readonly kind: Broker['kind'];
  onBar?: (bar: Bar) => Promise<void>;
  barDue?: (bar: Bar) => boolean;
  cash?: () => number;
  submitGroup?: (orders: readonly OrderRecord[]) => Promise<Array<{ clientOrderId: string; brokerOrderId: string }>>;

  constructor(
    private readonly inner: Broker,
    private readonly fence: OrderFence,
  ) {
    this.kind = inner.kind;
    if (inner.onBar) this.onBar = (bar) => inner.onBar!(bar);
    // Forwarded too, or every bar would call the paper broker's onBar (and wait on its promise).
    if (inner.barDue) this.barDue = (bar) => inner.barDue!(bar);
    if (inner.cash) this.cash = () => inner.cash!();
    if (inner.submitGroup) {
      this.submitGroup = async (orders) => {
        for (const o of orders) await this.guard(o);
        return inner.submitGroup!(orders);
      };
    }
  }

  private async guard(order: OrderRecord): Promise<void> {
    try {
      await this.fence.append(order.symbol, {
        type: 'placed',
        client_order_id: order.clientOrderId,
        side: order.side,
        qty: order.qty,
        order_type: order.type,
        broker: order.broker,
        // The whole record, so a node that takes the symbol over can adopt the order (trader-fence.ts).
        record: order,
      });
    } catch (err) {
      throw fenceFailure(err, 'order');
    }
  }

  async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    await this.guard(order);
    return this.inner.submit(order);
  }
  /**
   * A cancel of a working order is appended through the fence too: with one broker for the cluster,
   * a node that lost the symbol must not cancel what its new owner adopted.
   */
  async cancel(clientOrderId: string): Promise<void> {
    const working = (await this.inner.openOrders()).find((o) => o.clientOrderId === clientOrderId);
    if (working) {
      try {
        await this.fence.append(working.symbol, { type: 'cancel', client_order_id: clientOrderId });
      } catch (err) {
        throw fenceFailure(err, 'cancel');
      }
    }
    return this.inner.cancel(clientOrderId);
  }
  openOrders(): Promise<BrokerOrder[]> {
    return this.inner.openOrders();
  }
  executions(sinceMs?: number): Promise<BrokerFill[]> {
    return this.inner.executions(sinceMs);
  }
  onEvent(cb: (e: BrokerEvent) => void): void {
    this.inner.onEvent(cb);
  }
  positions(): Promise<Record<string, BrokerPosition>> {
    return this.inner.positions();
  }
}

/**
 * A failed append as the broker error the order path knows: fenced (this node lost the symbol) is a
 * rejection; NATS unreachable leaves unknown whether the append landed, so nothing is sent and the
 * order stays pending for reconciliation to settle.
 */
function fenceFailure(err: unknown, what: 'order' | 'cancel'): BrokerError {
  if (err instanceof FencedError) return new BrokerError('BROKER_REJECTED', `${err.message}; the ${what} was not sent`, { cause: err });
  return new BrokerError('BROKER_UNAVAILABLE', `order fence unavailable: ${(err as Error).message}`, { cause: err });
}
