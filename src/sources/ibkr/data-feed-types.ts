/**
 * The IBKR data feed's public shapes: its options, events and status (the feed is data-feed.ts).
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { IbkrConnection, IbkrConnectionState } from './connection.ts';
import type { HistoricalFetchOptions, HistoricalFetchStats } from './historical-fetch.ts';
import type { HistoricalPacer, HistoricalPacerStats } from './historical-pacer.ts';
import type { Clock } from '../../market/clock.ts';

export type RealtimeState = 'pending' | 'streaming' | 'stalled' | 'unavailable' | 'bad-contract';

export interface IbkrDataFeedOptions {
  connection: IbkrConnection;
  clock: Clock;
  /** Close the connection with the feed. Default false (true from `IbkrDataFeed.create`). */
  ownsConnection?: boolean;
  /** A subscription silent for this many 5 s intervals while the market is open is stalled. Default 3. */
  stallIntervals?: number;
  /** How long past an interval's end to wait for its last 5 s bar. Default 2000 ms. */
  graceMs?: number;
  /** Period of the flush and stall checks. Default 1000 ms. */
  tickMs?: number;
  /** Stall detection runs only while this says the market is open (real TWS is silent when closed). Default: always open. */
  isMarketOpen?: (ts: number) => boolean;
  /** Retry of a symbol refused with 420/354/10168. Defaults 60 s doubling to 10 min. */
  unavailableRetry?: { initialMs?: number; maxMs?: number };
  /** Re-requests of a stalled stream after the first (at detection). Defaults 30 s doubling to 5 min. */
  stallRetry?: { initialMs?: number; maxMs?: number };
  /** Real-time bars inside regular trading hours only. Default false. */
  useRTH?: boolean;
  historical?: HistoricalFetchOptions;
  pacer?: HistoricalPacer;
}

export interface IbkrDataFeedEvents {
  /** A completed aggregated bar (source `ibkr-realtime`). */
  bar: [bar: Bar];
  unavailable: [symbol: string, code: number, message: string];
  /** Nothing arrived since `since` (clock ms) for `stallIntervals` intervals. */
  stall: [symbol: string, since: number];
  recovered: [symbol: string];
  connection: [state: IbkrConnectionState];
  /** Every TWS error or notice code, for metrics. */
  ibError: [code: number, symbol: string | undefined];
}

export interface RealtimeStatus {
  symbol: string;
  barSize: BarSize;
  state: RealtimeState;
  /** Clock time of the last 5 s bar, if any. */
  lastBarAt?: number;
  /** reqRealTimeBars sent for this symbol so far. */
  requests: number;
  lastError?: { code: number; message: string; at: number };
}

export interface IbkrDataFeedStatus {
  connection: IbkrConnectionState;
  realtime: RealtimeStatus[];
  historical: HistoricalFetchStats & { pacer: HistoricalPacerStats };
}
