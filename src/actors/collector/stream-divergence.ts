/**
 * Streamed bars against the REST bars of the same minutes (stream-ingest.ts): the last RING
 * streamed minutes per symbol are kept in a fixed ring of numbers, and a REST bar for one of them
 * with other OHLC or volume counts as a divergence (REST then replaces the streamed bar).
 */
import type { Bar } from '../../market/bar.ts';
import type { Logger } from '../../runtime/log.ts';
import type { SourceName } from '../../sources/types.ts';

const RING = 32;
const MIN = 60_000;

/** Streamed values of recent minutes per symbol: [start, open, high, low, close, volume] x RING. */
type Ring = Float64Array;

export class StreamDivergence {
  /** Per source, per symbol (nested maps: no key string built per bar). */
  private readonly rings = new Map<SourceName, Map<string, Ring>>();
  private readonly counts: Partial<Record<SourceName, number>> = {};

  constructor(private readonly log: Logger) {}

  /** Divergences counted for `source`. */
  count(source: SourceName): number {
    return this.counts[source] ?? 0;
  }

  /** A streamed 1Min bar. */
  remember(source: SourceName, b: Bar): void {
    let bySymbol = this.rings.get(source);
    if (!bySymbol) {
      bySymbol = new Map();
      this.rings.set(source, bySymbol);
    }
    let ring = bySymbol.get(b.symbol);
    if (!ring) {
      ring = new Float64Array(RING * 6).fill(NaN);
      bySymbol.set(b.symbol, ring);
    }
    const i = ((b.start / MIN) % RING) * 6;
    ring[i] = b.start;
    ring[i + 1] = b.open;
    ring[i + 2] = b.high;
    ring[i + 3] = b.low;
    ring[i + 4] = b.close;
    ring[i + 5] = b.volume;
  }

  /** REST bars just fetched: a minute the stream sent with other OHLC or volume is a divergence. */
  observeRest(source: SourceName, bars: readonly Bar[]): void {
    if (bars.length === 0 || bars[0].barSize !== '1Min') return;
    const bySymbol = this.rings.get(source);
    if (!bySymbol) return;
    for (const b of bars) {
      const ring = bySymbol.get(b.symbol);
      if (!ring) continue;
      const i = ((b.start / MIN) % RING) * 6;
      if (ring[i] !== b.start) continue;
      if (ring[i + 1] !== b.open || ring[i + 2] !== b.high || ring[i + 3] !== b.low || ring[i + 4] !== b.close || ring[i + 5] !== b.volume) {
        this.counts[source] = (this.counts[source] ?? 0) + 1;
        this.log.info({ source, symbol: b.symbol, start: new Date(b.start).toISOString() }, 'streamed bar differs from the REST bar; REST replaces it');
      }
      ring[i] = NaN;
    }
  }
}
