/**
 * Writes what a source returned to the cache: each bar checked against the store's rules first (one
 * bad bar is skipped and counted, not allowed to make the store refuse the whole batch every
 * cycle), bars identical to the cached ones (same source and values) skipped, and the arbiter told
 * which keys were written.
 *
 * A batch may hold many symbols (a stream's minute close: one bar of every symbol): it is one
 * `putMany`, so one LMDB transaction and one flush, and then `onWritten` runs once per symbol of the
 * batch, in the order the symbols first appear. Every written bar goes through `announce`, whatever
 * path wrote it.
 */
import { BAR_SOURCE_CODE, type Bar, sameValues } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import { createBarView } from '../../storage/bar-codec.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import { validateBar } from '../../storage/bar-validation.ts';
import type { BarReader, BarView } from '../../storage/types.ts';

export type OnInvalid = (invalid: number, firstProblem: string, symbol: string) => void;

/** Whether the cache already holds this very bar (same source, same values), read into `view`. */
export function cachedAs(store: Pick<BarReader, 'readInto'>, b: Bar, view: BarView): boolean {
  if (!store.readInto(b.symbol, b.barSize, b.start, view)) return false;
  return view.sourceCode === BAR_SOURCE_CODE[b.source] && sameValues(view, b);
}
export class BarWriter {
  barsWritten = 0;
  invalidBars = 0;
  readonly receivedBySource: Record<string, number> = {};
  private readonly stored = createBarView();

  constructor(
    private readonly store: BarStore,
    private readonly onWritten: (barSize: BarSize, symbol: string, starts: number[], sources?: number[]) => void,
  ) {}

  /** Writes what is new or changed; returns how many bars the store wrote. `onInvalid` hears of skipped bars first. */
  write(symbol: string, barSize: BarSize, bars: Bar[], onInvalid: (invalid: number, firstProblem: string) => void): Promise<number> {
    return this.writeBatch(bars, (invalid, problem) => onInvalid(invalid, problem), symbol, barSize);
  }

  /**
   * Writes bars of any symbols (one bar size) in one transaction; `onInvalid` hears of each symbol's
   * skipped bars. Resolves with how many bars the store wrote.
   */
  async writeBatch(bars: readonly Bar[], onInvalid: OnInvalid, symbol?: string, barSize?: BarSize): Promise<number> {
    if (bars.length === 0) return 0;
    for (const b of bars) this.receivedBySource[b.source] = (this.receivedBySource[b.source] ?? 0) + 1;
    const fresh: Bar[] = [];
    let invalid: Map<string, { n: number; problem: string }> | undefined;
    for (const b of bars) {
      try {
        validateBar(b);
      } catch (err) {
        invalid ??= new Map();
        const key = symbol ?? b.symbol;
        const seen = invalid.get(key);
        if (seen) seen.n++;
        else invalid.set(key, { n: 1, problem: `${new Date(b.start).toISOString()}: ${(err as Error).message}` });
        continue;
      }
      if (!this.sameAsCached(b)) fresh.push(b);
    }
    if (invalid) {
      for (const [sym, { n, problem }] of invalid) {
        this.invalidBars += n;
        onInvalid(n, problem, sym);
      }
    }
    if (fresh.length === 0) return 0;
    const held = new Uint8Array(fresh.length);
    const result = await this.store.putMany(fresh, held);
    this.barsWritten += result.written;
    if (symbol !== undefined && barSize !== undefined) {
      this.announce(
        barSize,
        symbol,
        fresh.map((b) => b.start),
        Array.from(held),
      );
    } else {
      for (const g of groupStarts(fresh, held)) this.announce(g.barSize, g.symbol, g.starts, g.sources);
    }
    return result.written;
  }

  /**
   * After bars are written: the same path for every written bar, whichever write it came from.
   * `sources`: the source code the cache holds for each start now (the arbiter hands the key on
   * without reading the bar back).
   */
  private announce(barSize: BarSize, symbol: string, starts: number[], sources: number[]): void {
    this.onWritten(barSize, symbol, starts, sources);
  }

  /** The cache already holds this very bar: same source, same values. */
  private sameAsCached(b: Bar): boolean {
    return cachedAs(this.store, b, this.stored);
  }
}

/** Starts (and the held source codes) per (symbol, bar size), in order of first appearance. */
function groupStarts(bars: readonly Bar[], held: Uint8Array): Iterable<{ symbol: string; barSize: BarSize; starts: number[]; sources: number[] }> {
  const bySeries = new Map<string, { symbol: string; barSize: BarSize; starts: number[]; sources: number[] }>();
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i];
    const id = b.barSize === '1Min' ? b.symbol : `${b.symbol}\u0000${b.barSize}`;
    const g = bySeries.get(id);
    if (g) {
      g.starts.push(b.start);
      g.sources.push(held[i]);
    } else bySeries.set(id, { symbol: b.symbol, barSize: b.barSize, starts: [b.start], sources: [held[i]] });
  }
  return bySeries.values();
}
