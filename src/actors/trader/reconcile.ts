/**
 * Reconciliation: settles every order the journal has not closed against what the broker knows.
 * Fills the broker has and the journal lacks are applied; a pending order the broker works is
 * adopted, one it never received is sent now (once), and one it no longer has ended without
 * telling us. Positions from journal fills are compared with the broker's.
 *
 * Brackets: the pending legs of one group that the broker lacks are sent again together, as a
 * group (the broker links them to legs it already has, never sending one twice). Exits whose entry
 * never reached the journal (a crash between the legs' writes; the entry is written last) are
 * closed without being sent.
 */
import type { Clock } from '../../market/clock.ts';
import type { OrderRecord } from '../../storage/types.ts';
import type { Broker, BrokerFill } from './broker.ts';
import type { OrderBook } from './order-book.ts';
import { transition, type TraderLog } from './orders.ts';

export interface ReconcileReport {
  /** Pending orders the broker already had: taken over, not sent again. */
  adopted: number;
  /** Pending orders the broker never received: sent now. */
  resubmitted: number;
  /** Fills the broker had and the journal lacked. */
  fillsApplied: number;
  /** Orders the broker no longer works and that did not fill completely. */
  closed: number;
  /** Human-readable differences found (unknown fills, position mismatches). */
  discrepancies: string[];
}

/** What reconciliation uses of the order manager. */
export interface ReconcileHost {
  broker: Broker;
  book: OrderBook;
  clock: Clock;
  log: TraderLog;
  killed(): boolean;
  /** Symbols with a position from journal fills, and the signed shares of one. */
  quantities(): ReadonlyMap<string, number>;
  position(symbol: string): number;
  fill(record: OrderRecord, f: BrokerFill): boolean;
  markSubmitted(id: string, brokerOrderId: string): void;
  /** Sends a journaled pending order; resolves to whether the broker took it. */
  resubmit(record: OrderRecord): Promise<boolean>;
  /** Sends a bracket's journaled pending legs as one group; resolves to whether the broker took them. */
  resubmitGroup(legs: OrderRecord[]): Promise<boolean>;
  idle(): Promise<void>;
}

export async function reconcileOrders(h: ReconcileHost): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: 0, resubmitted: 0, fillsApplied: 0, closed: 0, discrepancies: [] };
  const { book } = h;
  const now = h.clock.now();
  const brokerOpen = new Map((await h.broker.openOrders()).map((o) => [o.clientOrderId, o]));
  let since = now - 24 * 3_600_000;
  for (const r of book.open.values()) since = Math.min(since, r.createdAt);
  const executions = await h.broker.executions(since);

  for (const f of executions) {
    const record = book.lookup(f.clientOrderId);
    if (!record) {
      report.discrepancies.push(`broker fill ${f.execId} (${f.side} ${f.qty} ${f.symbol}) belongs to no journaled order`);
      continue;
    }
    if (h.fill(record, f)) report.fillsApplied++;
  }

  const groupsSent = new Set<string>();
  for (const record of [...book.open.values()]) {
    const id = record.clientOrderId;
    if (!book.open.has(id)) continue; // closed earlier in this run, with its group
    const working = brokerOpen.get(id);
    if (working) {
      if (record.state === 'pending') {
        report.adopted++;
        h.markSubmitted(id, working.brokerOrderId);
      }
      continue;
    }
    if (record.state === 'pending' && record.filledQty === 0) {
      if (h.killed()) {
        book.update(transition(record, 'cancelled', now, { rejectReason: 'kill switch engaged; never sent' }));
        report.closed++;
        continue;
      }
      if (record.groupId) {
        const group = record.groupId;
        if (groupsSent.has(group)) continue;
        groupsSent.add(group);
        const legs = [...book.open.values()].filter((r) => r.groupId === group && r.state === 'pending' && r.filledQty === 0 && !brokerOpen.has(r.clientOrderId));
        legs.sort((a, b) => (a.role === 'entry' ? -1 : b.role === 'entry' ? 1 : 0));
        if (!book.lookup(group)) {
          for (const leg of legs) book.update(transition(leg, 'cancelled', now, { rejectReason: `its bracket entry ${group} never reached the journal; never sent` }));
          report.closed += legs.length;
          continue;
        }
        h.log.warn({ group, legs: legs.map((l) => l.clientOrderId) }, 'pending bracket legs the broker never received: sending them now');
        if (await h.resubmitGroup(legs)) report.resubmitted += legs.length;
        continue;
      }
      h.log.warn({ clientOrderId: id, ageMs: now - record.createdAt }, 'pending order the broker never received: sending it now');
      if (await h.resubmit(record)) report.resubmitted++;
      continue;
    }
    // The broker has it neither working nor completely filled: it ended without telling us.
    const reason = record.filledQty > 0 ? `broker stopped working it after ${record.filledQty} of ${record.qty} filled` : 'broker no longer has the order and reports no fills';
    book.update(transition(record, 'cancelled', now, { rejectReason: reason }));
    report.closed++;
  }

  const held = await h.broker.positions();
  const quantities = h.quantities();
  const symbols = new Set([...Object.keys(held), ...quantities.keys()]);
  for (const symbol of symbols) {
    const mine = h.position(symbol);
    const theirs = held[symbol]?.qty ?? 0;
    if (mine !== theirs) report.discrepancies.push(`${symbol}: journal fills give ${mine} shares, broker reports ${theirs}`);
  }
  for (const d of report.discrepancies) h.log.warn({}, `reconcile: ${d}`);
  h.log.info({ ...report, discrepancies: report.discrepancies.length }, 'reconciled orders with the broker');
  await h.idle();
  return report;
}
