/**
 * What a Collector (collector.ts) is given: its sources (best first), the cache, the checkpoint
 * store, the calendar and the clock, its schedule and limits, and the hooks it tells of what it
 * does; and what it checkpoints between restarts.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { BarStream } from '../../sources/massive/bar-stream.ts';
import type { HistoricalBarSource, SourceName } from '../../sources/types.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import type { CollectorStatus } from './protocol.ts';
import type { ScheduleConfig } from './schedule.ts';

export interface CollectorOptions {
  sources: HistoricalBarSource[];
  store: BarStore;
  checkpoints: CheckpointStore;
  calendar: MarketCalendar;
  clock: Clock;
  log: Logger;
  schedule: ScheduleConfig;
  backfillDays: number;
  failoverAfterFailures: number;
  retryPreferredAfterMs: number;
  /** How far behind coveredUntil each cycle re-asks, for late and corrected bars. */
  refetchWindowMs?: number;
  /** The simulated 24/7 market: every minute is collected as in regular hours. */
  alwaysOpen: boolean;
  /** A cycle still running after this long (clock ms) is aborted and counted as overrun; default 10 min. */
  cycleDeadlineMs?: number;
  /** Told after every write which keys are in the cache now, with the source code held for each when known. */
  onWritten(barSize: BarSize, symbol: string, starts: number[], sources?: number[]): void;
  /** Told of every failed collection (webhook notifications). */
  onFailure?(f: { source: SourceName; symbol?: string; code: string; status?: number }): void;
  /** A stream client per source whose `websocket` is on (stream-ingest.ts); none: REST only. */
  streams?: Partial<Record<SourceName, () => BarStream>>;
  /** While a stream is live, REST only reconciles at this cadence; default 5 minutes. */
  reconcileIntervalMs?: number;
  /** A live stream silent this long inside the session is stalled; default 3 minutes. */
  streamStallMs?: number;
  /** Told after every collection cycle, with the status then (the dashboard's `collector` events). */
  onCycle?(status: CollectorStatus): void;
}

/** The collector's checkpoint: its running intent, symbols, coverage and active source. */
export interface CollectorCheckpoint {
  running: boolean;
  symbols: string[];
  barSize: BarSize;
  coveredUntil: Record<string, number>;
  lastCollection: Record<string, number>;
  active: number;
}
