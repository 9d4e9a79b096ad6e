/**
 * Mean reversion on the z-score of the close against its rolling mean and standard deviation:
 * long `qty` when the close is `entryZ` deviations below the mean, short (with allowShort, else
 * flat) when `entryZ` above, flat once back within `exitZ`. Between exitZ and entryZ it has no
 * opinion and emits nothing, so whatever position is held (also one carried over a restart) is kept.
 */
import { z } from 'zod';
import type { Bar } from '../../../market/bar.ts';
import type { Signal, Strategy, StrategyContext } from './contract.ts';
import { parseParams } from './params.ts';
import { RollingWindow } from './rolling-window.ts';

export const meanReversionParams = z
  .object({
    window: z.number().int().min(2).default(20),
    entryZ: z.number().positive().default(2),
    exitZ: z.number().min(0).default(0.5),
    qty: z.number().int().positive().default(100),
    allowShort: z.boolean().default(false),
  })
  .strict()
  .refine((p) => p.exitZ < p.entryZ, { message: 'must be less than entryZ', path: ['exitZ'] });

export type MeanReversionParams = z.output<typeof meanReversionParams>;

export class MeanReversion implements Strategy {
  readonly name = 'mean-reversion';
  readonly params: MeanReversionParams;
  private readonly windows = new Map<string, RollingWindow>();

  constructor(params?: Record<string, unknown>) {
    this.params = parseParams(this.name, meanReversionParams, params);
  }

  warmUp(symbol: string, bars: readonly Bar[]): void {
    const w = new RollingWindow(this.params.window);
    this.windows.set(symbol, w);
    for (const bar of bars) w.push(bar.close);
  }

  onBar(symbol: string, bar: Bar, _ctx: StrategyContext): Signal | undefined {
    let w = this.windows.get(symbol);
    if (!w) {
      w = new RollingWindow(this.params.window);
      this.windows.set(symbol, w);
    }
    w.push(bar.close);
    if (!w.full) return undefined;
    const mean = w.mean();
    const sd = w.stdDev();
    const z = sd > 0 ? (bar.close - mean) / sd : 0;
    const { qty, allowShort, entryZ, exitZ, window } = this.params;
    let targetQty: number;
    let why: string;
    if (z <= -entryZ) {
      targetQty = qty;
      why = `at or below -${entryZ}`;
    } else if (z >= entryZ) {
      targetQty = allowShort ? -qty : 0;
      why = `at or above ${entryZ}`;
    } else if (Math.abs(z) <= exitZ) {
      targetQty = 0;
      why = `within ±${exitZ}`;
    } else {
      return undefined;
    }
    return {
      kind: 'target',
      symbol,
      targetQty,
      reason: `close ${bar.close} has z-score ${z.toFixed(2)} against its ${window}-bar mean ${mean.toFixed(4)}, ${why}`,
    };
  }
}
