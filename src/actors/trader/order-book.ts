/**
 * The order manager's orders in memory, and the journal queue behind them. Open orders by client
 * order id, the final ones this process has seen (bounded, the newest kept, so a late event finds its
 * order before the journal write lands), and per symbol the signed quantity still open.
 *
 * Journal writes after the pending put are not awaited on the hot path: `update` puts the record in
 * memory now and in the journal in call order; `writes` holds the ones not yet durable.
 */
import type { OrderJournal, OrderRecord } from '../../storage/types.ts';
import { isFinal, signedRemaining } from './orders.ts';

const FINAL_KEPT = 10_000;

export class OrderBook {
  /** Orders not final, by client order id. */
  readonly open = new Map<string, OrderRecord>();
  /** Final orders seen by this process (bounded: the last FINAL_KEPT / 2 at least). */
  readonly closed = new RecentFinal();
  /** Signed shares still open per symbol (absent when zero). */
  readonly openQty = new Map<string, number>();
  /** Journal writes issued and not yet settled. */
  readonly writes = new Set<Promise<void>>();

  constructor(
    private readonly journal: OrderJournal,
    private readonly onWriteError: (clientOrderId: string, err: unknown) => void,
  ) {}

  /** The journal, this process or the open orders already hold this id. */
  known(id: string): boolean {
    return this.open.has(id) || this.closed.has(id) || this.journal.get(id) !== undefined;
  }

  lookup(id: string): OrderRecord | undefined {
    return this.open.get(id) ?? this.closed.get(id) ?? this.journal.get(id);
  }

  /** Puts `record` in memory now and, with `write`, in the journal in call order. */
  update(record: OrderRecord, write = true): void {
    const id = record.clientOrderId;
    if (isFinal(record.state)) {
      this.open.delete(id);
      this.closed.set(id, record);
    } else {
      this.open.set(id, record);
    }
    this.refreshOpenQty(record.symbol);
    if (!write) return;
    const journal = this.journal;
    if (journal.putNow !== undefined) {
      // A journal durable on return (a backtest's, in memory): nothing to wait for.
      try {
        journal.putNow(record);
      } catch (err) {
        this.onWriteError(id, err);
      }
      return;
    }
    const p: Promise<void> = journal.put(record).then(
      () => {
        this.writes.delete(p);
      },
      (err: unknown) => {
        this.writes.delete(p);
        this.onWriteError(id, err);
      },
    );
    this.writes.add(p);
  }

  /** Drops an open order that never reached the journal. */
  forget(record: OrderRecord): void {
    this.open.delete(record.clientOrderId);
    this.refreshOpenQty(record.symbol);
  }

  refreshOpenQty(symbol: string): void {
    let sum = 0;
    // Bracket exits are contingent (brackets.ts): they close what their entry opened, not more.
    for (const r of this.open.values()) if (r.symbol === symbol && r.role !== 'take_profit' && r.role !== 'stop_loss') sum += signedRemaining(r);
    if (sum === 0) this.openQty.delete(symbol);
    else this.openQty.set(symbol, sum);
  }
}

/**
 * The final orders, in two generations: when the newer one holds FINAL_KEPT / 2, it becomes the
 * older and the oldest is dropped whole. (A Map trimmed by deleting its first key one by one, as
 * before, makes every trim scan the deleted slots at its front: slow once past the bound, which a
 * backtest reaches after 10 000 orders.)
 */
export class RecentFinal {
  private newer = new Map<string, OrderRecord>();
  private older = new Map<string, OrderRecord>();

  get(id: string): OrderRecord | undefined {
    return this.newer.get(id) ?? this.older.get(id);
  }

  has(id: string): boolean {
    return this.newer.has(id) || this.older.has(id);
  }

  set(id: string, record: OrderRecord): void {
    if (this.older.has(id)) this.older.delete(id);
    this.newer.set(id, record);
    if (this.newer.size >= FINAL_KEPT / 2) {
      this.older = this.newer;
      this.newer = new Map();
    }
  }
}
