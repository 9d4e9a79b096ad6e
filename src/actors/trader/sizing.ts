/** Turns a strategy's signal into the order it asks for, before risk checks. */
import type { RiskOrder } from './risk.ts';
import type { Signal } from './strategies/contract.ts';

/**
 * A target signal trades the difference between the target and the position plus open orders (null
 * when there is none) as a market order; an order signal is taken as it is, with its type's fields.
 */
export function sizeSignal(signal: Signal, position: number, openQty: number): RiskOrder | null {
  const symbol = signal.symbol;
  if (signal.kind === 'target') {
    const delta = signal.targetQty - position - openQty;
    if (delta === 0) return null;
    return { symbol, side: delta > 0 ? 'buy' : 'sell', qty: Math.abs(delta), type: 'market', limitPrice: undefined };
  }
  const order: RiskOrder = { symbol, side: signal.side, qty: signal.qty, type: signal.type, limitPrice: undefined };
  if (signal.type === 'limit' || signal.type === 'stop_limit') order.limitPrice = signal.limitPrice;
  if (signal.stopPrice !== undefined) order.stopPrice = signal.stopPrice;
  if (signal.trailAmount !== undefined) order.trailAmount = signal.trailAmount;
  if (signal.trailPercent !== undefined) order.trailPercent = signal.trailPercent;
  if (signal.tif !== undefined) order.tif = signal.tif;
  if (signal.outsideRth) order.outsideRth = true;
  return order;
}
