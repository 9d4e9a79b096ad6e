/**
 * What the operator can still see and do while the trader actor is not running (failed, or between
 * restarts): orders from the journal, positions and realized P&L replayed from the journal's fills
 * (the same average-cost ledger the trader uses), the last prices from the bar cache, and a kill
 * switch that latches in the checkpoint store, so the trader comes back with it engaged, and says
 * which open orders it could not cancel (cancelling needs the broker, which lives in the actor).
 */
import type { Storage } from '../storage/storage.ts';
import type { OrderRecord } from '../storage/types.ts';
import { PositionLedger } from '../actors/trader/ledger.ts';
import { orderView } from '../actors/trader/actor.ts';
import type { OrderView, PositionView } from '../actors/trader/protocol.ts';

/** Same key as the order manager's (order-manager.ts). */
export const KILL_SWITCH_KEY = 'trader-kill-switch';
const SESSION_KEY = 'trader';

const OPEN = new Set(['pending', 'submitted', 'partially_filled']);

export interface OfflineTrader {
  orders(): OrderView[];
  positions(): PositionView[];
  status(why: string): Record<string, unknown>;
  kill(why: string): Promise<{ killed: true; could_not_cancel: OrderView[]; message: string }>;
}

export function offlineTrader(storage: Pick<Storage, 'orders' | 'checkpoints'>, now: () => number = Date.now): OfflineTrader {
  function replay(): { ledger: PositionLedger; prices: Map<string, number>; open: OrderRecord[] } {
    const records = storage.orders.all();
    const ledger = new PositionLedger();
    ledger.setNow(now());
    const fills = records.flatMap((r) => r.fills.map((f) => ({ r, f })));
    fills.sort((a, b) => a.f.time - b.f.time || (a.f.execId < b.f.execId ? -1 : 1));
    for (const { r, f } of fills) ledger.applyFill(r.symbol, r.side, f.qty, f.price, f.commission, f.time);
    const prices = new Map<string, number>();
    for (const r of records) {
      const last = r.fills[r.fills.length - 1];
      if (last) prices.set(r.symbol, last.price);
    }
    return { ledger, prices, open: records.filter((r) => OPEN.has(r.state)) };
  }
  function positions(): PositionView[] {
    const { ledger, prices } = replay();
    return ledger
      .positions()
      .filter((p) => p.qty !== 0)
      .map((p) => {
        const last = prices.get(p.symbol) ?? null;
        return {
          symbol: p.symbol,
          qty: p.qty,
          avg_price: p.avgPrice,
          last_price: last,
          market_value: last === null ? null : last * p.qty,
          unrealized_pnl: last === null ? null : (last - p.avgPrice) * p.qty,
        };
      });
  }
  return {
    orders: () => storage.orders.all().slice(-1000).map(orderView),
    positions,
    status(why) {
      const { ledger, prices, open } = replay();
      const pnl = ledger.pnlTodayParts(prices);
      const session = storage.checkpoints.get<{ running: boolean; live: { symbols: string[]; bar_size: string; strategy: string; broker: string } | null }>(SESSION_KEY);
      return {
        is_running: false,
        trader: 'unavailable',
        trader_reason: why,
        symbols: session?.live?.symbols ?? [],
        bar_size: session?.live?.bar_size ?? null,
        strategy: session?.live?.strategy ?? null,
        broker: session?.live?.broker ?? null,
        positions: positions(),
        open_orders: open.map(orderView),
        pnl_today: { realized: pnl.realized, unrealized: pnl.unrealized, total: pnl.total },
        risk: { killed: storage.checkpoints.get(KILL_SWITCH_KEY) !== undefined },
      };
    },
    async kill(why) {
      if (storage.checkpoints.get(KILL_SWITCH_KEY) === undefined) await storage.checkpoints.put(KILL_SWITCH_KEY, { at: now() });
      const open = replay().open.map(orderView);
      const message = open.length
        ? `the trader is not running (${why}): the kill switch is latched and holds when it restarts, but ${open.length} open order(s) could not be cancelled: ${open.map((o) => o.client_order_id).join(', ')}`
        : `the trader is not running (${why}): the kill switch is latched and holds when it restarts; no open orders`;
      return { killed: true, could_not_cancel: open, message };
    },
  };
}
