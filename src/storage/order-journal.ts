/**
 * The order journal as older versions kept it: the `orders` database of the LMDB environment,
 * keyed by client order id (msgpack values). The journal now lives in a file of its own
 * (order-log.ts); this is still read once, to carry an old data directory's orders over.
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
