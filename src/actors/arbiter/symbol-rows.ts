/**
 * A collector notice's symbols resolved to the arbiter's table rows without a string-keyed Map
 * lookup per bar.
 *
 * Why: the notice's symbol strings arrive fresh from postMessage (a copy in this thread), so a
 * `Map.get(symbol)` hashes each one and compares it with the key in the Map: at 5,000 symbols that is
 * a walk through the Map's buckets and a read of a key string elsewhere in the heap, per bar, a few
 * cache misses each. The collector's WrittenBatch gives every symbol a small integer id the first
 * time it writes it, stable for that batch's life (its `epoch`); here each id maps to its row (slot)
 * in one Int32Array, 4 bytes per symbol read in notice order. The Map is asked once per symbol per
 * epoch and subscription; a new epoch (a restarted collector) or a new subscription (another
 * FeedTable) starts the cache over.
 */
import type { FeedTable } from './feed-table.ts';

/** `rows[id]`: 0 not asked yet, -1 not subscribed, else the slot + 1. */
export class SymbolRows {
  private rows = new Int32Array(64);
  private epoch = Number.NaN;
  private table: FeedTable | null = null;

  /** Call once per notice: forgets every id when the sender or the subscription changed. */
  use(epoch: number, table: FeedTable): void {
    if (epoch === this.epoch && table === this.table) return;
    this.epoch = epoch;
    this.table = table;
    this.rows.fill(0);
  }

  /** The slot of `symbol` sent as `id` (asks `slots` the first time), or -1 when it is not subscribed. */
  slotOf(id: number, symbol: string, slots: ReadonlyMap<string, number>): number {
    const rows = this.rows;
    if (id < rows.length) {
      const r = rows[id];
      if (r !== 0) return r > 0 ? r - 1 : -1;
    }
    return this.learn(id, symbol, slots);
  }

  private learn(id: number, symbol: string, slots: ReadonlyMap<string, number>): number {
    if (!(id >= 0 && id <= 0x3fffffff && Number.isInteger(id))) return slots.get(symbol) ?? -1;
    if (id >= this.rows.length) {
      let n = this.rows.length * 2;
      while (n <= id) n *= 2;
      const grown = new Int32Array(n);
      grown.set(this.rows);
      this.rows = grown;
    }
    const slot = slots.get(symbol) ?? -1;
    this.rows[id] = slot < 0 ? -1 : slot + 1;
    return slot;
  }
}
