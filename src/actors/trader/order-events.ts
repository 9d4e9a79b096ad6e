/**
 * The trader's `order` and `fill` events: the order journal, wrapped so that every durable write
 * is reported once it is durable. An `order` event carries the order as /orders shows it; a `fill`
 * event each fill not reported before (fills are told apart by the broker's execution id, so a
 * reconciliation that rewrites an order does not report its fills again).
 */
import type { EmitEvent } from '../../runtime/events.ts';
import type { OrderJournal, OrderRecord } from '../../storage/types.ts';
import type { OrderView } from './protocol.ts';

export function reportingJournal(journal: OrderJournal, emit: EmitEvent, view: (r: OrderRecord) => OrderView): OrderJournal {
  const reported = new Map<string, Set<string>>();
  for (const r of journal.all()) reported.set(r.clientOrderId, new Set(r.fills.map((f) => f.execId)));
  return {
    get: (id) => journal.get(id),
    all: () => journal.all(),
    open: () => journal.open(),
    async put(record) {
      await journal.put(record);
      emit('order', { ...view(record) });
      let seen = reported.get(record.clientOrderId);
      if (!seen) reported.set(record.clientOrderId, (seen = new Set()));
      for (const f of record.fills) {
        if (seen.has(f.execId)) continue;
        seen.add(f.execId);
        emit('fill', {
          client_order_id: record.clientOrderId,
          symbol: record.symbol,
          side: record.side,
          qty: f.qty,
          price: f.price,
          commission: f.commission,
          exec_id: f.execId,
          time: new Date(f.time).toISOString(),
          reason: record.reason,
        });
      }
    },
  };
}
