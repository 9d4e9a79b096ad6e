/**
 * What the arbiter handed the trader, bar by bar: the bar's key and the rung that served it, in
 * LMDB, so `barkeep replay` can feed exactly those bars through the strategy again and show why the
 * engine did what it did.
 *
 * Keyed [barSize, start, symbol] (lmdb's ordered array keys), so a span of one bar size is one
 * range read in time order. Values are small ({ rung, source, at }); a record is written once per
 * delivered bar, not awaited (lmdb-js commits writes of one event-loop turn together), so the
 * arbiter's delivery path never waits on the disk. A record lost to a crash in the instant after
 * its delivery costs the replay that bar, not the trader anything.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { BarSize } from '../market/bar-size.ts';

export interface DeliveryRecord {
  symbol: string;
  barSize: BarSize;
  start: number;
  /** The ladder rung that served the bar (ibkr-realtime, preload, cache, ibkr-historical). */
  rung: string;
  /** The bar's source, as stored in the cache when it was handed on. */
  source: string;
  /** Clock time of the delivery, UTC epoch ms. */
  at: number;
}

interface Value {
  rung: string;
  source: string;
  at: number;
}

export class DeliveryLog {
  private readonly db: Database<Value, [string, number, string]>;
  private failures = 0;

  constructor(env: RootDatabase) {
    this.db = env.openDB<Value, [string, number, string]>({ name: 'deliveries', encoding: 'msgpack' });
  }

  /** Records one delivery; never throws and never waits (a failed write is counted). */
  record(r: DeliveryRecord): void {
    try {
      this.db.put([r.barSize, r.start, r.symbol], { rung: r.rung, source: r.source, at: r.at }).then(
        () => undefined,
        () => {
          this.failures++;
        },
      );
    } catch {
      this.failures++;
    }
  }

  /** Writes that failed since this instance was opened. */
  get failedWrites(): number {
    return this.failures;
  }

  /** Deliveries of `barSize` bars with from <= start < to, in time order (then by symbol); only `symbols` when given. */
  range(barSize: BarSize, from: number, to: number, symbols?: ReadonlySet<string>): DeliveryRecord[] {
    const out: DeliveryRecord[] = [];
    for (const { key, value } of this.db.getRange({ start: [barSize, from], end: [barSize, to] })) {
      const [, start, symbol] = key;
      if (symbols && !symbols.has(symbol)) continue;
      out.push({ symbol, barSize, start, rung: value.rung, source: value.source, at: value.at });
    }
    return out;
  }

  /** Resolves once every record written so far is on disk. */
  flushed(): Promise<unknown> {
    return this.db.flushed;
  }
}
