/**
 * The engine's helpers that are not the bar loop: opening positions seeded as a restarted trader
 * finds them, a daily bar's close, and the check that stops a run whose strategy failed.
 */
import type { TradingLoop } from '../actors/trader/trading-loop.ts';
import type { MarketCalendar } from '../market/calendar.ts';
import { BacktestError, type EngineInput } from './engine-types.ts';
import type { MemoryCheckpoints, MemoryJournal } from './memory-stores.ts';

/** Journals each opening position as a filled order and gives the paper broker the same book. */
export async function seedPositions(journal: MemoryJournal, checkpoints: MemoryCheckpoints, initial: NonNullable<EngineInput['initial']>, at: number): Promise<void> {
  const positions: Record<string, { qty: number; avgPrice: number }> = {};
  for (const [symbol, p] of Object.entries(initial.positions)) {
    if (p.qty === 0) continue;
    positions[symbol] = { qty: p.qty, avgPrice: p.avgPrice };
    const id = `opening-${symbol}`;
    const qty = Math.abs(p.qty);
    await journal.put({
      clientOrderId: id,
      strategy: 'opening',
      symbol,
      side: p.qty > 0 ? 'buy' : 'sell',
      qty,
      type: 'market',
      broker: 'paper',
      state: 'filled',
      brokerOrderId: id,
      filledQty: qty,
      avgFillPrice: p.avgPrice,
      commission: 0,
      fills: [{ execId: id, qty, price: p.avgPrice, time: at, commission: 0 }],
      barStart: at,
      reason: 'position held when the run starts',
      createdAt: at,
      updatedAt: at,
    });
  }
  // The paper broker's persisted state (paper-broker.ts PaperState), as a restarted broker finds it.
  await checkpoints.put('paper-broker', { version: 1, cash: initial.cash, seq: 0, accepted: 0, positions, open: [], fills: [], known: [] });
}

/** A daily bar is complete at its session's close; a day with no session (a vendor's odd bar) at its end. */
export function dailyClose(calendar: MarketCalendar, start: number, sizeMs: number): number {
  const bounds = calendar.sessionBounds(start);
  return bounds ? bounds.close - 1 : start + sizeMs;
}

export function failOnStrategyTrouble(loop: TradingLoop): void {
  const c = loop.counters;
  if (c.strategyErrors === 0 && c.invalidSignals === 0 && c.decisionErrors === 0) return;
  const paused = loop.status().pausedSymbols;
  const reason = paused.length > 0 ? paused.map((p) => `${p.symbol}: ${p.reason}`).join('; ') : 'an order decision failed';
  throw new BacktestError('BACKTEST_STRATEGY_FAILED', reason);
}
