/**
 * The trading loop's order journal, keyed by client order id (msgpack values). The trader writes
 * an order here, and waits for `put` to resolve (committed and flushed), before sending it: after
 * a crash it finds every order it may have sent, and never sends one twice.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { OrderRecord, OrderState, OrderJournal } from './types.ts';

const OPEN_STATES: ReadonlySet<OrderState> = new Set(['pending', 'submitted', 'partially_filled']);

export class LmdbOrderJournal implements OrderJournal {
  private readonly db: Database<OrderRecord, string>;

  constructor(env: RootDatabase) {
    this.db = env.openDB<OrderRecord, string>({ name: 'orders', encoding: 'msgpack' });
  }

  async put(record: OrderRecord): Promise<void> {
    const id = record?.clientOrderId;
    if (typeof id !== 'string' || id.length === 0 || id.length > 400) {
      throw Object.assign(new TypeError(`order record: clientOrderId must be a non-empty string, got ${JSON.stringify(id)}`), { code: 'BAD_ORDER' });
    }
    await this.db.put(id, record);
    await this.db.flushed;
  }

  get(clientOrderId: string): OrderRecord | undefined {
    if (typeof clientOrderId !== 'string' || clientOrderId.length === 0) return undefined;
    return this.db.get(clientOrderId);
  }

  all(): OrderRecord[] {
    const out: OrderRecord[] = [];
    for (const { value } of this.db.getRange()) out.push(value);
    return out.sort(byCreation);
  }

  open(): OrderRecord[] {
    return this.all().filter((r) => OPEN_STATES.has(r.state));
  }
}

function byCreation(a: OrderRecord, b: OrderRecord): number {
  return a.createdAt - b.createdAt || (a.clientOrderId < b.clientOrderId ? -1 : a.clientOrderId > b.clientOrderId ? 1 : 0);
}
