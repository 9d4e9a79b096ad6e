/**
 * Brackets in the order manager: which orders are entries, the journal records of a bracket's
 * legs, what the working stop-losses put at risk, and which exits a strategy's own closing order
 * replaces. Pure functions over OrderRecord; the order manager journals and sends.
 *
 * Decisions:
 * - An entry is an order that opens or adds to a position (position plus open entries, before and
 *   after, on the same side of zero). An order that flips a position protects only the new side:
 *   its exits are for |after| shares. An order that only reduces gets no exits.
 * - Exits are contingent: they never count as open quantity (a target strategy would otherwise see
 *   its position as already closed and buy again), and they count as risk only through their
 *   stop-loss's worst case.
 * - A strategy that closes or reduces a position itself replaces the protective exits of that
 *   symbol: they are cancelled before its order is sent, so the position is never closed twice.
 */
import type { OrderRecord, OrderRole, OrderSide } from '../../storage/types.ts';
import { type ExitSettings, exitLegs, exitOrderId, hasExits, referencePrice, stopLossDistance } from './order-types.ts';

export function isExitRole(role: OrderRole | undefined): role is 'take_profit' | 'stop_loss' {
  return role === 'take_profit' || role === 'stop_loss';
}

/**
 * Shares that exits should protect when an order of `qty` on `side` is sent while the position
 * plus open entries is `before`: qty for an entry, the new side for a flip, 0 for a pure reduce.
 */
export function protectedQty(before: number, side: OrderSide, qty: number): number {
  const after = before + (side === 'buy' ? qty : -qty);
  if (before === 0 || Math.sign(before) === Math.sign(after)) return Math.abs(after) > Math.abs(before) ? qty : 0;
  return Math.abs(after);
}

/**
 * The legs of a bracket for `entry` (a pending record built by the order manager): the entry,
 * marked as the group's, then its exits for `qty` shares priced from `ref`. Only the entry when
 * there are no exits to attach, or no reference price to place them from.
 */
export function bracketRecords(entry: OrderRecord, exits: ExitSettings | undefined, qty: number, last: number | undefined): OrderRecord[] {
  if (!hasExits(exits) || qty <= 0) return [entry];
  const ref = referencePrice(entry, last);
  if (ref === undefined || !(ref > 0)) return [entry];
  const groupId = entry.clientOrderId;
  const out: OrderRecord[] = [{ ...entry, groupId, role: 'entry' }];
  for (const leg of exitLegs(entry.side, qty, ref, exits)) {
    const { role, side, qty: legQty, ...spec } = leg;
    out.push({
      ...entry,
      clientOrderId: exitOrderId(groupId, role),
      side,
      qty: legQty,
      limitPrice: undefined,
      stopPrice: undefined,
      trailAmount: undefined,
      trailPercent: undefined,
      outsideRth: undefined,
      ...spec,
      groupId,
      role,
      reason: `${role === 'take_profit' ? 'take-profit' : 'stop-loss'} of ${groupId}`,
    });
  }
  // Drop the explicit undefineds so the records look like any other in the journal.
  return out.map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as OrderRecord);
}

/** The worst case of a bracket about to be sent: its stop-loss's loss in dollars, or undefined without one. */
export function bracketWorstLoss(legs: readonly OrderRecord[], last: number | undefined): number | undefined {
  const entry = legs[0];
  const stop = legs.find((r) => r.role === 'stop_loss');
  if (!entry || !stop) return undefined;
  const ref = referencePrice(entry, last);
  if (ref === undefined) return undefined;
  const d = stopLossDistance(stop, ref);
  return d === undefined ? undefined : d * stop.qty;
}

/**
 * What the working stop-losses would lose if they all fired now: per leg, shares times the distance
 * from the price (last price once the entry filled, else the entry's reference) to its stop.
 */
export function openWorstLoss(open: Iterable<OrderRecord>, lookup: (id: string) => OrderRecord | undefined, prices: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const r of open) {
    if (r.role !== 'stop_loss' || !r.groupId) continue;
    const entry = lookup(r.groupId);
    const last = prices.get(r.symbol);
    const ref = entry && entry.filledQty === 0 ? referencePrice(entry, last) : (last ?? entry?.avgFillPrice);
    if (ref === undefined) continue;
    const d = stopLossDistance(r, ref);
    if (d !== undefined) total += d * Math.max(0, r.qty - r.filledQty);
  }
  return total;
}

/** The working exits of `symbol`, which a strategy's own reducing order replaces. */
export function exitsOf(open: Iterable<OrderRecord>, symbol: string): OrderRecord[] {
  const out: OrderRecord[] = [];
  for (const r of open) if (r.symbol === symbol && isExitRole(r.role)) out.push(r);
  return out;
}
