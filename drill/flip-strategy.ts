/**
 * The drills' strategy: its target is a pure function of the bar (long `qty` on an up bar, short on
 * a down bar), so the decision oracle can recompute, from the cached bars alone, what the trader had
 * to do at every bar, and check the journal against it.
 */
import type { Bar } from '../src/market/bar.ts';
import type { Signal, Strategy } from '../src/actors/trader/strategies/contract.ts';

export function flipTarget(bar: Pick<Bar, 'open' | 'close'>, qty: number): number {
  return bar.close >= bar.open ? qty : -qty;
}

export default function flip(params: Record<string, unknown>): Strategy {
  const qty = typeof params.qty === 'number' ? params.qty : 10;
  return {
    name: 'flip',
    warmUp(): void {},
    onBar(symbol: string, bar: Bar): Signal {
      return { kind: 'target', symbol, targetQty: flipTarget(bar, qty), reason: `flip ${bar.start}` };
    },
  };
}
