/**
 * The real paper broker behind a stand-in that a test (or the trader bench) changes a method or two
 * of: a gate before submit, a process that "dies" at one point, a stamp of when submit was called.
 * Everything else is the paper broker's. It has no `barDue` and no `submitGroup` of its own, so
 * the order manager calls `onBar` on every bar and a stand-in takes brackets only if it adds them.
 */
import type { Broker, BrokerEvent, BrokerFill, BrokerOrder, BrokerPosition } from '../../src/actors/trader/broker.ts';
import type { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { OrderRecord } from '../../src/storage/types.ts';

export class PaperStandIn implements Broker {
  readonly kind = 'paper' as const;
  constructor(protected readonly paper: PaperBroker) {}
  submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    return this.paper.submit(order);
  }
  cancel(id: string): Promise<void> {
    return this.paper.cancel(id);
  }
  openOrders(): Promise<BrokerOrder[]> {
    return this.paper.openOrders();
  }
  executions(since?: number): Promise<BrokerFill[]> {
    return this.paper.executions(since);
  }
  onEvent(cb: (e: BrokerEvent) => void): void {
    this.paper.onEvent(cb);
  }
  onBar(b: Bar): Promise<void> {
    return this.paper.onBar(b);
  }
  positions(): Promise<Record<string, BrokerPosition>> {
    return this.paper.positions();
  }
  cash(): number {
    return this.paper.cash();
  }
}
