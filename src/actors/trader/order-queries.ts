/**
 * Queries over the order journal for GET /orders and GET /fills: by symbol, by time, by state.
 * Run in the trader's thread (which has just written what it decided) and, when the trader is
 * down, in the main thread over the same LMDB journal.
 */
import type { OrderFill, OrderRecord } from '../../storage/types.ts';

export interface OrdersQuery {
  symbol?: string;
  /** Epoch ms: orders updated at or after. */
  since?: number;
  /** One order state, or `open` (not final) or `final`. */
  state?: string;
  limit?: number;
}

export interface FillsQuery {
  symbol?: string;
  /** Epoch ms: fills at or after. */
  since?: number;
  limit?: number;
}

export interface FillView {
  exec_id: string;
  client_order_id: string;
  strategy: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
  commission: number;
  time: string;
}

const OPEN = new Set(['pending', 'submitted', 'partially_filled']);
const DEFAULT_LIMIT = 1000;

export function filterOrders(all: readonly OrderRecord[], q: OrdersQuery = {}): OrderRecord[] {
  const out = all.filter(
    (r) =>
      (!q.symbol || r.symbol === q.symbol) &&
      (q.since === undefined || r.updatedAt >= q.since) &&
      (!q.state || (q.state === 'open' ? OPEN.has(r.state) : q.state === 'final' ? !OPEN.has(r.state) : r.state === q.state)),
  );
  const limit = q.limit ?? DEFAULT_LIMIT;
  return out.length > limit ? out.slice(-limit) : out;
}

/** One fill as `/fills`, the CLI and the `fill` webhook show it. */
export function fillView(r: OrderRecord, f: OrderFill): FillView {
  return {
    exec_id: f.execId,
    client_order_id: r.clientOrderId,
    strategy: r.strategy,
    symbol: r.symbol,
    side: r.side,
    qty: f.qty,
    price: f.price,
    commission: f.commission,
    time: new Date(f.time).toISOString(),
  };
}

export function fillsOf(all: readonly OrderRecord[], q: FillsQuery = {}): FillView[] {
  const out: FillView[] = [];
  for (const r of all) {
    if (q.symbol && r.symbol !== q.symbol) continue;
    for (const f of r.fills) {
      if (q.since !== undefined && f.time < q.since) continue;
      out.push(fillView(r, f));
    }
  }
  out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.exec_id < b.exec_id ? -1 : 1));
  const limit = q.limit ?? DEFAULT_LIMIT;
  return out.length > limit ? out.slice(-limit) : out;
}
