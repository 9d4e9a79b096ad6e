/**
 * Positions and today's P&L, derived from fills only (the journal's, replayed at start, then each
 * new fill). Average-cost accounting: adding to a position moves its average price, reducing it
 * realizes (price - average) on the shares closed, crossing zero restarts at the fill price.
 *
 * "P&L today" = realized on fills since midnight New York, minus today's commissions, plus the
 * unrealized P&L of open positions against their average cost at the last known prices. Positions
 * carried overnight thus count their whole open P&L, not only today's move: the conservative
 * reading for a daily-loss limit, and the only one that needs no price history.
 */
import { marketDay } from '../../market/calendar.ts';
import type { OrderSide } from '../../storage/types.ts';
import type { BrokerPosition } from './broker.ts';

export interface LedgerPosition {
  symbol: string;
  qty: number;
  avgPrice: number;
  realizedToday: number;
}

export interface PnlToday {
  /** Realized on today's fills, net of today's commissions. */
  realized: number;
  unrealized: number;
  commission: number;
  total: number;
}

interface Slot {
  qty: number;
  avgPrice: number;
  realizedToday: number;
}

/** Midnight New York of the day containing `ts`, and of the next day. */
export function newYorkDay(ts: number): { start: number; end: number } {
  const { start, end } = marketDay(ts);
  return { start, end };
}

export class PositionLedger {
  private readonly slots = new Map<string, Slot>();
  /** Signed shares per symbol, the view the risk engine reads; symbols at zero are removed. */
  readonly quantities = new Map<string, number>();
  private dayStart = -Infinity;
  private dayEnd = -Infinity;
  private commissionToday = 0;

  /** Moves the ledger's day to the one containing `now`; today's figures reset when the day changes. */
  setNow(now: number): void {
    if (now >= this.dayStart && now < this.dayEnd) return;
    const { start, end } = newYorkDay(now);
    if (start === this.dayStart) return;
    this.dayStart = start;
    this.dayEnd = end;
    this.commissionToday = 0;
    for (const s of this.slots.values()) s.realizedToday = 0;
  }

  applyFill(symbol: string, side: OrderSide, qty: number, price: number, commission: number, time: number): void {
    const signed = side === 'buy' ? qty : -qty;
    let slot = this.slots.get(symbol);
    if (!slot) {
      slot = { qty: 0, avgPrice: 0, realizedToday: 0 };
      this.slots.set(symbol, slot);
    }
    const today = time >= this.dayStart && time < this.dayEnd;
    if (slot.qty !== 0 && Math.sign(slot.qty) !== Math.sign(signed)) {
      const closed = Math.min(Math.abs(slot.qty), qty);
      if (today) slot.realizedToday += (price - slot.avgPrice) * closed * Math.sign(slot.qty);
    }
    if (today) this.commissionToday += commission;
    const next = nextPosition(slot, signed, price);
    slot.qty = next.qty;
    slot.avgPrice = next.avgPrice;
    if (slot.qty === 0) this.quantities.delete(symbol);
    else this.quantities.set(symbol, slot.qty);
  }

  qty(symbol: string): number {
    return this.slots.get(symbol)?.qty ?? 0;
  }

  /** Realized today + unrealized at `prices` - today's commissions. A position with no known price counts no unrealized P&L. */
  pnlToday(prices: ReadonlyMap<string, number>): number {
    let pnl = -this.commissionToday;
    for (const [symbol, s] of this.slots) {
      pnl += s.realizedToday;
      if (s.qty !== 0) {
        const last = prices.get(symbol);
        if (last !== undefined) pnl += (last - s.avgPrice) * s.qty;
      }
    }
    return pnl;
  }

  /** The parts of pnlToday: realized is net of today's commissions; total = realized + unrealized. */
  pnlTodayParts(prices: ReadonlyMap<string, number>): PnlToday {
    let realized = -this.commissionToday;
    let unrealized = 0;
    for (const [symbol, s] of this.slots) {
      realized += s.realizedToday;
      const last = prices.get(symbol);
      if (s.qty !== 0 && last !== undefined) unrealized += (last - s.avgPrice) * s.qty;
    }
    return { realized, unrealized, commission: this.commissionToday, total: realized + unrealized };
  }

  positions(): LedgerPosition[] {
    const out: LedgerPosition[] = [];
    for (const [symbol, s] of this.slots) {
      if (s.qty !== 0 || s.realizedToday !== 0) out.push({ symbol, qty: s.qty, avgPrice: s.avgPrice, realizedToday: s.realizedToday });
    }
    return out.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  }
}

/** Average-cost position after a signed fill: adding keeps a weighted average, reducing keeps it, crossing zero restarts it at the fill price. */
export function nextPosition(pos: BrokerPosition | undefined, signedQty: number, price: number): BrokerPosition {
  const qty = pos?.qty ?? 0;
  const avg = pos?.avgPrice ?? 0;
  const next = qty + signedQty;
  if (next === 0) return { qty: 0, avgPrice: 0 };
  if (qty === 0 || Math.sign(qty) === Math.sign(signedQty)) {
    return { qty: next, avgPrice: (avg * Math.abs(qty) + price * Math.abs(signedQty)) / Math.abs(next) };
  }
  if (Math.sign(next) === Math.sign(qty)) return { qty: next, avgPrice: avg };
  return { qty: next, avgPrice: price };
}
