/**
 * Shared parts of the collector tests: a real LMDB store in a temp dir, a Collector on a
 * ManualClock, a source wrapper that records every span asked for, and drivers that move the
 * manual clock only while nothing is on its way to a fake (so the fakes' rate windows count in the
 * same time as the sources' limiters).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Collector, type CollectorOptions } from '../../src/actors/collector/collector.ts';
import { DEFAULT_SCHEDULE } from '../../src/actors/collector/schedule.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import type { ManualClock } from '../../src/market/clock.ts';
import type { HistoricalBarSource, SourceStats } from '../../src/sources/types.ts';
import type { BarStore } from '../../src/storage/bar-store.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import type { CheckpointStore } from '../../src/storage/types.ts';
import { waitFor } from '../helpers/wait.ts';

export const MIN = 60_000;
export const DAY = 86_400_000;
export const calendar = new MarketCalendar();
export const silentLog = pino({ level: 'silent' });

/** A temp LMDB environment; `reopen` closes and opens it again (a restart). */
export class TempStore {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-collector-'));
  storage: Storage = openStorage({ path: this.dir });

  async reopen(): Promise<Storage> {
    await this.storage.close();
    this.storage = openStorage({ path: this.dir });
    return this.storage;
  }

  async dispose(): Promise<void> {
    await this.storage.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Fetch {
  symbol: string;
  barSize: BarSize;
  from: number;
  to: number;
  bars: number;
}

/** Passes every call to `inner` and records the span it asked for (the source-request counter). */
export class RecordingSource implements HistoricalBarSource {
  readonly fetches: Fetch[] = [];
  constructor(readonly inner: HistoricalBarSource) {}
  get name() {
    return this.inner.name;
  }
  get apiType() {
    return this.inner.apiType;
  }
  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    const bars = await this.inner.fetchBars(symbol, barSize, from, to, signal);
    this.fetches.push({ symbol, barSize, from, to, bars: bars.length });
    return bars;
  }
  stats(): SourceStats {
    return this.inner.stats();
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

export interface Written {
  barSize: BarSize;
  symbol: string;
  starts: number[];
}

/**
 * The real bar store and checkpoint store, counting the writes not yet durable, so a clock driver
 * can hold time still while the collector waits on LMDB rather than on the clock.
 */
export function trackWrites(store: Storage): { bars: BarStore; checkpoints: CheckpointStore; pending(): number } {
  let pending = 0;
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending++;
    return p.finally(() => {
      pending--;
    });
  };
  const bars = new Proxy(store.bars, {
    get(target, prop) {
      if (prop === 'putMany' || prop === 'put') return (arg: never) => track(target[prop](arg));
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const checkpoints: CheckpointStore = {
    get: (key) => store.checkpoints.get(key),
    put: (key, value) => track(store.checkpoints.put(key, value)),
    delete: (key) => track(store.checkpoints.delete(key)),
  };
  return { bars, checkpoints, pending: () => pending };
}

export function makeCollector(
  store: Storage,
  clock: ManualClock,
  sources: HistoricalBarSource[],
  opts: Partial<CollectorOptions> = {},
): { collector: Collector; written: Written[]; writing: () => boolean } {
  const written: Written[] = [];
  const tracked = trackWrites(store);
  const collector = new Collector({
    sources,
    store: tracked.bars,
    checkpoints: tracked.checkpoints,
    calendar,
    clock,
    log: silentLog,
    schedule: { ...DEFAULT_SCHEDULE },
    backfillDays: 1,
    failoverAfterFailures: 3,
    retryPreferredAfterMs: 5 * MIN,
    alwaysOpen: false,
    onWritten: (barSize, symbol, starts) => written.push({ barSize, symbol, starts }),
    ...opts,
  });
  return { collector, written, writing: () => tracked.pending() > 0 };
}

/** Waits (event-loop turns, the clock untouched) until `cond` holds. The deadline only stops a hang. */
export async function until(cond: () => boolean, what: string, hangGuardMs = 15_000): Promise<void> {
  await waitFor(cond, { what, timeoutMs: hangGuardMs, intervalMs: 0 });
}

/** A fake's counters, as the Massive and Alpaca fakes keep them. */
export interface FakeCounters {
  readonly requests: number;
  readonly inFlight: number;
}

/**
 * True while a request is between a source and its fake: sent (counted by the source) but not yet
 * arrived (counted by the fake), or arrived and not answered. The clock must stand still then, or
 * the fake would stamp the arrival later than the source's limiter stamped the start.
 */
export function inTransit(pairs: Array<[HistoricalBarSource, FakeCounters]>): () => boolean {
  return () => pairs.some(([source, fake]) => fake.inFlight > 0 || source.stats().requests !== fake.requests);
}

export { advanceUntil } from '../helpers/wait.ts';

/** A bar without receivedAt, for comparing what was stored with what was served. */
export function values(bars: Bar[]): Array<Omit<Bar, 'receivedAt'>> {
  return bars.map(({ receivedAt: _r, ...rest }) => rest);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
