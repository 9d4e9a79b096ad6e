/**
 * In-memory stand-ins for the LMDB order journal and checkpoint store, for backtests: the same
 * contracts (src/storage/types.ts) the live trader's OrderManager and PaperBroker write to, without
 * the disk. A backtest's orders and broker state live only as long as the run.
 *
 * Both offer `putNow` (durable on return), which lets the order manager and the paper broker take
 * their synchronous path: the same code as live, without a promise per write.
 */
import type { CheckpointStore, OrderJournal, OrderRecord } from '../storage/types.ts';

/** Every write is done when called: one settled promise serves them all (no promise per write). */
const WRITTEN: Promise<void> = Promise.resolve();

export class MemoryJournal implements OrderJournal {
  private readonly records = new Map<string, OrderRecord>();

  put(record: OrderRecord): Promise<void> {
    this.records.set(record.clientOrderId, record);
    return WRITTEN;
  }

  /** Durable on return: the order manager journals and sends without a promise. */
  putNow(record: OrderRecord): void {
    this.records.set(record.clientOrderId, record);
  }

  get(clientOrderId: string): OrderRecord | undefined {
    return this.records.get(clientOrderId);
  }

  /** Oldest first, by createdAt then id, as the LMDB journal orders them. */
  all(): OrderRecord[] {
    const out = [...this.records.values()];
    // A backtest journals its orders in time order, so the list is most often sorted already.
    for (let i = 1; i < out.length; i++) {
      if (byAge(out[i - 1], out[i]) > 0) return out.sort(byAge);
    }
    return out;
  }

  open(): OrderRecord[] {
    return this.all().filter((r) => r.state === 'pending' || r.state === 'submitted' || r.state === 'partially_filled');
  }
}

export class MemoryCheckpoints implements CheckpointStore {
  private readonly values = new Map<string, unknown>();

  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  put<T>(key: string, value: T): Promise<void> {
    this.values.set(key, value);
    return WRITTEN;
  }

  /** Durable on return: the paper broker answers and fills without a promise. */
  putNow<T>(key: string, value: T): void {
    this.values.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}

function byAge(a: OrderRecord, b: OrderRecord): number {
  return a.createdAt - b.createdAt || (a.clientOrderId < b.clientOrderId ? -1 : a.clientOrderId > b.clientOrderId ? 1 : 0);
}
