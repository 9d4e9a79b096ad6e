/**
 * One REST pass of a collection cycle (collector.ts) over the collector's symbols on one source:
 * per symbol (or per group of symbols on a multi-symbol source) it asks for
 * [coveredUntil - refetch window, start of the forming bar), writes what came back, and moves the
 * symbol's coverage. Failures are classified for the source selector: a refused key ends the pass
 * (`refused`), a source that is down (5xx, timeout, 429 after its retries) ends it too, anything
 * else is the symbol's and the pass goes on.
 */
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { Clock } from '../../market/clock.ts';
import { SourceError, type HistoricalBarSource, type SourceName } from '../../sources/types.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import { groupSpans, isMultiSymbol, type MultiSymbolSource } from './multi-symbol.ts';
import type { Pass } from './source-selector.ts';

const DAY_MS = 86_400_000;

/** Failures that are the source's, not the symbol's: the rest of the pass would fail the same way. */
const SOURCE_DOWN = new Set(['UNAVAILABLE', 'TIMEOUT', 'RATE_LIMITED']);

/** What a pass reads and moves of the collector (a live view: getters over its current state). */
export interface PassHost {
  readonly symbols: readonly string[];
  readonly barSize: BarSize;
  /** Per symbol, the end of the last span the source answered in full; moved by the pass. */
  readonly coveredUntil: Record<string, number>;
  readonly lastCollection: Record<string, number>;
  readonly refetchWindowMs: number;
  readonly backfillDays: number;
  readonly clock: Clock;
  readonly store: BarStore;
  /** Start of the bar still forming at `now`. */
  barOpenAt(now: number): number;
  /** REST bars just fetched (the stream's divergence check). */
  observeRest(source: SourceName, bars: readonly Bar[]): void;
  write(source: SourceName, symbol: string, barSize: BarSize, bars: Bar[]): Promise<number>;
  recordError(source: SourceName, err: unknown, symbol?: string): void;
}

export async function collectAll(h: PassHost, source: HistoricalBarSource, signal: AbortSignal): Promise<Pass> {
  const now = h.clock.now();
  const pass: Pass = { ok: 0, aborted: false };
  if (isMultiSymbol(source)) return collectMulti(h, source, now, signal, pass);
  for (const [i, symbol] of h.symbols.entries()) {
    // A turn of the event loop between symbols: a cycle whose bars are all cached already (the
    // first one after a restart) never waits on the disk, and would otherwise hold off control
    // calls and peer messages until its last symbol (hundreds of ms on the simulated market).
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal.aborted) {
      pass.aborted = true;
      break;
    }
    try {
      await collectSymbol(h, source, symbol, now, signal);
      pass.ok++;
    } catch (err) {
      if (signal.aborted) {
        pass.aborted = true;
        break;
      }
      if (failed(h, pass, source.name, err, symbol)) break;
    }
  }
  return pass;
}

/** One request per group of symbols (multi-symbol.ts); failures classified as in collectAll. */
async function collectMulti(h: PassHost, source: MultiSymbolSource, now: number, signal: AbortSignal, pass: Pass): Promise<Pass> {
  const open = h.barOpenAt(now);
  const spans = h.symbols.map((symbol) => {
    const covered = h.coveredUntil[symbol] ?? initialCoverage(h, symbol, now);
    return { symbol, covered, from: Math.max(covered - h.refetchWindowMs, now - h.backfillDays * DAY_MS) };
  });
  for (const g of groupSpans(spans, h.refetchWindowMs)) {
    if (signal.aborted) {
      pass.aborted = true;
      break;
    }
    const from = g[0].from;
    try {
      const got =
        from < open
          ? await source.fetchBarsMulti(
              g.map((s) => s.symbol),
              h.barSize,
              from,
              open,
              signal,
            )
          : new Map<string, Bar[]>();
      for (const s of g) {
        const bars = got.get(s.symbol) ?? [];
        h.observeRest(source.name, bars);
        await h.write(source.name, s.symbol, h.barSize, bars);
        h.coveredUntil[s.symbol] = Math.max(s.covered, open);
        h.lastCollection[s.symbol] = h.clock.now();
      }
      pass.ok += g.length;
    } catch (err) {
      if (signal.aborted) {
        pass.aborted = true;
        break;
      }
      if (failed(h, pass, source.name, err, g.length === 1 ? g[0].symbol : undefined)) break;
    }
  }
  return pass;
}

/** Records a failure in the pass; true when it ends the pass (a refused key, a source that is down). */
function failed(h: PassHost, pass: Pass, source: SourceName, err: unknown, symbol: string | undefined): boolean {
  pass.lastError = err;
  h.recordError(source, err, symbol);
  const code = (err as SourceError)?.code;
  if (err instanceof SourceError && (code === 'AUTH' || code === 'FORBIDDEN')) {
    pass.refused = err;
    return true;
  }
  return err instanceof SourceError && SOURCE_DOWN.has(code);
}

async function collectSymbol(h: PassHost, source: HistoricalBarSource, symbol: string, now: number, signal: AbortSignal): Promise<void> {
  const open = h.barOpenAt(now);
  const covered = h.coveredUntil[symbol] ?? initialCoverage(h, symbol, now);
  const from = Math.max(covered - h.refetchWindowMs, now - h.backfillDays * DAY_MS);
  const bars = from < open ? await source.fetchBars(symbol, h.barSize, from, open, signal) : [];
  h.observeRest(source.name, bars);
  await h.write(source.name, symbol, h.barSize, bars);
  h.coveredUntil[symbol] = Math.max(covered, open);
  h.lastCollection[symbol] = h.clock.now();
}

/** Where a symbol's collection starts: after its newest cached bar, or backfill_days back. */
function initialCoverage(h: PassHost, symbol: string, now: number): number {
  const latest = h.store.latest(symbol, h.barSize);
  return latest ? latest.start + barSizeMs(h.barSize) : now - h.backfillDays * DAY_MS;
}
