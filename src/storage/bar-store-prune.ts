/**
 * The bar cache's retention (bar-store.ts): removes each series' bars older than its bar size's
 * retention, in chunks of PRUNE_CHUNK deletes per transaction so each write lock stays short, and
 * runs that in the background on the injected clock.
 */
import type { Database } from 'lmdb';
import { BAR_SIZES, BAR_SIZE_CODE, type BarSize } from '../market/bar-size.ts';
import type { Clock, TimerHandle } from '../market/clock.ts';
import { barKey, parseSeriesKey, readStart, seriesPrefix, withStart } from './bar-key.ts';

/** Deletes per prune transaction: keeps each write lock short. */
const PRUNE_CHUNK = 5_000;

type Bytes = Uint8Array;

/** Removes bars older than their size's retention at `now`; resolves with how many (flushed). */
export async function pruneBars(db: Database<Bytes, Bytes>, heads: Database<Bytes, Bytes>, retention: Record<BarSize, number>, now: number): Promise<number> {
  let total = 0;
  const series: { symbol: string; size: BarSize }[] = [];
  for (const key of heads.getKeys() as Iterable<Bytes>) {
    const { symbol, sizeCode } = parseSeriesKey(key);
    const size = BAR_SIZES.find((s) => BAR_SIZE_CODE[s] === sizeCode);
    if (size !== undefined) series.push({ symbol, size });
  }
  for (const { symbol, size } of series) {
    const keep = retention[size];
    if (!Number.isFinite(keep)) continue;
    const cutoff = now - keep;
    if (cutoff <= 0) continue;
    for (;;) {
      const removed = await db.transaction(() => pruneChunk(db, heads, symbol, size, cutoff));
      total += removed;
      if (removed < PRUNE_CHUNK) break;
    }
  }
  await db.flushed;
  return total;
}

/** In the write transaction: removes up to PRUNE_CHUNK bars with start < cutoff, and a head left behind. */
function pruneChunk(db: Database<Bytes, Bytes>, heads: Database<Bytes, Bytes>, symbol: string, size: BarSize, cutoff: number): number {
  const starts: number[] = [];
  for (const start of db.getKeys({
    start: barKey(symbol, size, 0),
    end: barKey(symbol, size, cutoff),
    limit: PRUNE_CHUNK,
  }) as Iterable<unknown>) {
    starts.push(start as number);
  }
  const key = barKey(symbol, size, 0);
  for (const start of starts) db.removeSync(withStart(key, start));
  if (starts.length < PRUNE_CHUNK) {
    const prefix = seriesPrefix(symbol, size);
    const head = heads.getBinaryFast(prefix);
    if (head !== undefined && readStart(head, 0) < cutoff) heads.removeSync(prefix);
  }
  return starts.length;
}

/** The background pruning rounds of one store, each cancellable. */
export class Pruners {
  private readonly handles = new Set<TimerHandle>();

  /** Runs `prune` every `intervalMs` of `clock` time; errors go to `onError` and the next round still runs. */
  start(clock: Clock, intervalMs: number, prune: (now: number) => Promise<number>, onError: (err: unknown) => void): TimerHandle {
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
    let stopped = false;
    let timer: TimerHandle;
    const handle: TimerHandle = {
      cancel: () => {
        stopped = true;
        timer.cancel();
        this.handles.delete(handle);
      },
    };
    const round = () => {
      prune(clock.now())
        .catch((err: unknown) => {
          if (!stopped) onError(err);
        })
        .finally(() => {
          if (!stopped) timer = clock.setTimeout(round, intervalMs);
        });
    };
    timer = clock.setTimeout(round, intervalMs);
    this.handles.add(handle);
    return handle;
  }

  stopAll(): void {
    for (const h of [...this.handles]) h.cancel();
  }
}
