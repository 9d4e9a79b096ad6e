/**
 * Which source's bar the store keeps when two sources write the same (symbol, bar size, start).
 * The rule itself is applied inside the write transaction by bar-store.ts; this file only ranks.
 */
import { BAR_SOURCES, BAR_SOURCE_CODE, isBarSource, type BarSource } from '../market/bar.ts';
import { StorageError } from './errors.ts';

/** Best first. Consolidated-tape history beats broker feeds; the simulator never beats real data. */
export const DEFAULT_SOURCE_PRECEDENCE: readonly BarSource[] = ['massive', 'ibkr-historical', 'ibkr-realtime', 'alpaca', 'sim'];

/**
 * Open/high/low/close of two sources' bars for one key differing by more than this (relative) is a
 * divergence. Volume is not compared: feeds count different trade sets (Alpaca's IEX vs the SIP).
 */
export const DIVERGENCE_THRESHOLD = 0.0005;

export class SourcePrecedence {
  /** rank by BAR_SOURCE_CODE: higher wins. Unlisted sources rank 0, below every listed one. */
  private readonly rankByCode: number[] = [];
  readonly order: readonly BarSource[];

  constructor(order: readonly BarSource[] = DEFAULT_SOURCE_PRECEDENCE) {
    const seen = new Set<string>();
    for (const s of order) {
      if (!isBarSource(s)) throw new StorageError('BAD_SOURCE', `sourcePrecedence: ${JSON.stringify(s)} is not a bar source (${BAR_SOURCES.join(', ')})`, { field: 'sourcePrecedence' });
      if (seen.has(s)) throw new StorageError('BAD_SOURCE', `sourcePrecedence: ${s} is listed twice`, { field: 'sourcePrecedence' });
      seen.add(s);
    }
    this.order = [...order];
    for (const s of BAR_SOURCES) this.rankByCode[BAR_SOURCE_CODE[s]] = 0;
    order.forEach((s, i) => {
      this.rankByCode[BAR_SOURCE_CODE[s]] = order.length - i;
    });
  }

  /** True when a bar from `incoming` may replace the stored bar from `stored` (codes). */
  replaces(incoming: number, stored: number): boolean {
    return incoming === stored || this.rankByCode[incoming] > this.rankByCode[stored];
  }
}
