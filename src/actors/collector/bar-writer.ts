/**
 * Writes what a source returned to the cache: each bar checked against the store's rules first (one
 * bad bar is skipped and counted, not allowed to make the store refuse the whole batch every
 * cycle), bars identical to the cached ones (same source and values) skipped, and the arbiter told
 * which keys were written.
 */
import { BAR_SOURCE_CODE, type Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { createBarView } from '../../storage/bar-codec.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import { validateBar } from '../../storage/bar-validation.ts';

export class BarWriter {
  barsWritten = 0;
  invalidBars = 0;
  readonly receivedBySource: Record<string, number> = {};
  private readonly stored = createBarView();

  constructor(
    private readonly store: BarStore,
    private readonly onWritten: (barSize: BarSize, symbol: string, starts: number[]) => void,
  ) {}

  /** Writes what is new or changed; returns how many bars the store wrote. `onInvalid` hears of skipped bars first. */
  async write(symbol: string, barSize: BarSize, bars: Bar[], onInvalid: (invalid: number, firstProblem: string) => void): Promise<number> {
    if (bars.length === 0) return 0;
    for (const b of bars) this.receivedBySource[b.source] = (this.receivedBySource[b.source] ?? 0) + 1;
    const fresh: Bar[] = [];
    let invalid = 0;
    let problem: string | undefined;
    for (const b of bars) {
      try {
        validateBar(b);
      } catch (err) {
        invalid++;
        problem ??= `${new Date(b.start).toISOString()}: ${(err as Error).message}`;
        continue;
      }
      if (!this.sameAsCached(b)) fresh.push(b);
    }
    if (invalid > 0) {
      this.invalidBars += invalid;
      onInvalid(invalid, problem!);
    }
    if (fresh.length === 0) return 0;
    const result = await this.store.putMany(fresh);
    this.barsWritten += result.written;
    this.onWritten(
      barSize,
      symbol,
      fresh.map((b) => b.start),
    );
    return result.written;
  }

  /** The cache already holds this very bar: same source, same values. */
  private sameAsCached(b: Bar): boolean {
    const v = this.stored;
    if (!this.store.readInto(b.symbol, b.barSize, b.start, v)) return false;
    return (
      v.sourceCode === BAR_SOURCE_CODE[b.source] &&
      v.open === b.open &&
      v.high === b.high &&
      v.low === b.low &&
      v.close === b.close &&
      v.volume === b.volume &&
      v.trades === b.trades &&
      (v.vwap === b.vwap || (Number.isNaN(v.vwap) && Number.isNaN(b.vwap)))
    );
  }
}
