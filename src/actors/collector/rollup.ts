/**
 * Builds the bar size the trading loop trades out of the smaller one the collector collects
 * (trading 5Min while collecting 1Min), in the collector's thread, right after each write.
 *
 * Design decisions:
 * - What to build comes from the arbiter's subscription checkpoint (the bar size and symbols the
 *   trader asked the arbiter for), read from the shared LMDB: whichever way the loop started
 *   (config, resumed session, POST /live/start) the rollup follows it, across restarts, with no
 *   message of its own.
 * - A larger bar is written once it is finished: the smaller bar that ends it is cached, or a later
 *   smaller bar is (a minute with no trades has no bar). Buckets not finished yet are remembered
 *   and looked at again on the next write. Buckets follow the NYSE session edges
 *   (rollupBucket in src/market/aggregate.ts): the last bucket of a session ends at the close.
 * - Written bars go to the cache and are announced exactly as collected ones are (`announce` is
 *   the collector's own hook), so the ladder and the trader see them like any other bar.
 * - The first time a symbol is rolled up to a size, the cached history of the last `historyDays`
 *   is rolled up too, so the arbiter's warm-up finds bars of the traded size.
 * - A corrected smaller bar rebuilds its larger bar; an identical result is not written again.
 * - Work is serialised on one promise chain: writes never overlap, and `idle()` waits for them.
 */
import { canRollUp, combineBars, rollupBucket, type RollupBucket } from '../../market/aggregate.ts';
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, isBarSize, type BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import { createBarView } from '../../storage/bar-codec.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import { cachedAs } from './bar-writer.ts';

/** The key ArbiterCheckpoints (src/actors/arbiter/checkpoints.ts) keeps its subscription under. */
const ARBITER_SUBSCRIPTION_KEY = 'arbiter';
const DAY_MS = 86_400_000;
const MAX_UNFINISHED = 64;

export interface RollupOptions {
  store: BarStore;
  checkpoints: CheckpointStore;
  calendar: MarketCalendar;
  clock: Clock;
  log: Logger;
  /** The simulated 24/7 market: no session edges. */
  alwaysOpen: boolean;
  /** How far back the first rollup of a symbol reaches into the cache. */
  historyDays: number;
  /** Tells the arbiter (and the event stream) that these keys are in the cache now. */
  announce(barSize: BarSize, symbol: string, starts: number[]): void;
}

export class Rollup {
  /** Larger bars written so far. */
  written = 0;
  private chain: Promise<void> = Promise.resolve();
  /** The arbiter's subscription as read this turn (undefined: not read yet this turn; null: none). */
  private sub: { barSize: BarSize; symbols: ReadonlySet<string> } | null | undefined;
  private readonly caughtUp = new Set<string>();
  /** Per symbol and size, buckets seen but not finished yet: a later write may finish them. */
  private readonly unfinished = new Map<string, Map<number, RollupBucket>>();
  private readonly view = createBarView();

  constructor(private readonly o: RollupOptions) {}

  /** The collector wrote these smaller bars: build (later) the larger bars they finish. Never throws. */
  onWritten(barSize: BarSize, symbol: string, starts: readonly number[]): void {
    const target = this.target(barSize, symbol);
    if (!target) return;
    const copy = [...starts];
    this.chain = this.chain.then(() => this.build(barSize, target, symbol, copy)).catch((err) => this.o.log.warn({ err, symbol, bar_size: target }, 'rollup failed'));
  }

  /** Resolves when every rollup asked for so far is written. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** The size the loop trades `symbol` at, when it is built from `collected` bars. */
  private target(collected: BarSize, symbol: string): BarSize | undefined {
    const sub = this.subscription();
    if (!sub?.symbols.has(symbol)) return undefined;
    return canRollUp(collected, sub.barSize) ? sub.barSize : undefined;
  }

  /**
   * What the loop trades, read from the arbiter's checkpoint once per turn of the event loop: a
   * minute's close writes thousands of series in one turn, and decoding the subscription (and
   * scanning its symbols) for each of them grew with the square of the symbols.
   */
  private subscription(): { barSize: BarSize; symbols: ReadonlySet<string> } | null {
    if (this.sub !== undefined) return this.sub;
    const raw = this.o.checkpoints.get<{ symbols?: unknown; barSize?: unknown }>(ARBITER_SUBSCRIPTION_KEY);
    this.sub = raw && isBarSize(raw.barSize) && Array.isArray(raw.symbols) ? { barSize: raw.barSize, symbols: new Set(raw.symbols as string[]) } : null;
    setImmediate(() => {
      this.sub = undefined;
    });
    return this.sub;
  }

  private async build(lower: BarSize, higher: BarSize, symbol: string, starts: number[]): Promise<void> {
    const { store, calendar, alwaysOpen } = this.o;
    store.refresh();
    const buckets = new Map<number, RollupBucket>();
    const add = (ts: number) => {
      const b = rollupBucket(ts, higher, calendar, alwaysOpen);
      if (b && !buckets.has(b.start)) buckets.set(b.start, b);
    };
    const key = `${symbol}|${lower}|${higher}`;
    const waiting = this.unfinished.get(key) ?? new Map<number, RollupBucket>();
    this.unfinished.set(key, waiting);
    for (const b of waiting.values()) buckets.set(b.start, b);
    if (!this.caughtUp.has(key)) {
      this.caughtUp.add(key);
      const from = this.o.clock.now() - this.o.historyDays * DAY_MS;
      for (const bar of store.range(symbol, lower, from, this.o.clock.now())) add(bar.start);
    }
    for (const s of starts) add(s);
    if (buckets.size === 0) return;
    const lowerMs = barSizeMs(lower);
    const newest = store.latestInto(symbol, lower, this.view) ? this.view.start : -Infinity;
    const now = this.o.clock.now();
    const out: Bar[] = [];
    for (const b of [...buckets.values()].sort((x, y) => x.start - y.start)) {
      const finished = newest >= b.end || store.readInto(symbol, lower, b.end - lowerMs, this.view);
      if (!finished) {
        waiting.set(b.start, b);
        continue;
      }
      waiting.delete(b.start);
      const parts = store.range(symbol, lower, b.from, b.end - 1);
      if (parts.length === 0) continue;
      const bar = combineBars(parts, higher, b.start, now);
      if (!this.sameAsCached(bar)) out.push(bar);
    }
    // Bounded: a bucket that never finishes (a symbol no longer collected) is not kept for ever.
    for (const start of waiting.keys()) {
      if (waiting.size <= MAX_UNFINISHED) break;
      waiting.delete(start);
    }
    if (out.length === 0) return;
    await store.putMany(out);
    this.written += out.length;
    this.o.announce(
      higher,
      symbol,
      out.map((b) => b.start),
    );
  }

  private sameAsCached(b: Bar): boolean {
    return cachedAs(this.o.store, b, this.view);
  }
}
