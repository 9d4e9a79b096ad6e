/**
 * Moving-average crossover: long `qty` while the fast simple moving average of closes is above the
 * slow one, flat (or short `qty` with allowShort) otherwise. It states a target on every bar once
 * warm, not only at the cross, so a refused or lost order is retried on the next bar and a restart
 * converges on the right position.
 */
import { z } from 'zod';
import type { Bar } from '../../../market/bar.ts';
import { ExplainedTarget, type Signal, type Strategy, type StrategyContext } from './contract.ts';
import { parseParams } from './params.ts';
import { RollingWindow } from './rolling-window.ts';

export const smaCrossoverParams = z
  .object({
    fast: z.number().int().min(1).default(10),
    slow: z.number().int().min(2).default(30),
    qty: z.number().int().positive().default(100),
    allowShort: z.boolean().default(false),
  })
  .strict()
  .refine((p) => p.slow > p.fast, { message: 'must be greater than fast', path: ['slow'] });

export type SmaCrossoverParams = z.output<typeof smaCrossoverParams>;

interface SymbolState {
  fast: RollingWindow;
  slow: RollingWindow;
}

export class SmaCrossover implements Strategy {
  readonly name = 'sma-crossover';
  readonly params: SmaCrossoverParams;
  private readonly state = new Map<string, SymbolState>();

  constructor(params?: Record<string, unknown>) {
    this.params = parseParams(this.name, smaCrossoverParams, params);
  }

  warmUp(symbol: string, bars: readonly Bar[]): void {
    const s = this.fresh(symbol);
    for (const bar of bars) {
      s.fast.push(bar.close);
      s.slow.push(bar.close);
    }
  }

  onBar(symbol: string, bar: Bar, _ctx: StrategyContext): Signal | undefined {
    const s = this.state.get(symbol) ?? this.fresh(symbol);
    s.fast.push(bar.close);
    s.slow.push(bar.close);
    if (!s.slow.full) return undefined;
    const fast = s.fast.mean();
    const slow = s.slow.mean();
    const { qty, allowShort } = this.params;
    const side = compare(fast, slow);
    const targetQty = side > 0 ? qty : side < 0 && allowShort ? -qty : 0;
    return new SmaTarget(symbol, targetQty, this.params, fast, slow);
  }

  private fresh(symbol: string): SymbolState {
    const s = { fast: new RollingWindow(this.params.fast), slow: new RollingWindow(this.params.slow) };
    this.state.set(symbol, s);
    return s;
  }
}

/**
 * Two averages this close (relative to their size) are equal. The means are sums of prices in
 * floating point, so two averages that are exactly equal in cents (common: 16 ties in 50 000
 * one-minute bars) come out a few units in the last place apart, on either side, depending on the
 * bars before the window as well (the running sums' rounding history). Without the tolerance a
 * tie is decided by that noise: a backtest and a live session with a different warm-up could trade
 * the same bar differently. A real difference between two means of cent prices is at least
 * 0.01 / (fast * slow), far above this.
 */
const TIE = 1e-9;

/** 1 when the fast average is above the slow one, -1 below, 0 on a tie. */
function compare(fast: number, slow: number): number {
  const d = fast - slow;
  const tol = TIE * Math.max(Math.abs(fast), Math.abs(slow));
  return d > tol ? 1 : d < -tol ? -1 : 0;
}

/** The crossover's target, with its two averages; the reason is worded only when read. */
class SmaTarget extends ExplainedTarget {
  constructor(
    symbol: string,
    targetQty: number,
    private readonly params: SmaCrossoverParams,
    private readonly fast: number,
    private readonly slow: number,
  ) {
    super(symbol, targetQty);
  }
  protected explain(): string {
    const { fast, slow } = this;
    const side = compare(fast, slow);
    const relation = side > 0 ? 'above' : side < 0 ? 'below' : 'equal to';
    return `fast SMA(${this.params.fast}) ${fast.toFixed(4)} ${relation} slow SMA(${this.params.slow}) ${slow.toFixed(4)}`;
  }
}
