/**
 * The storage contracts the rest of barkeep codes against. Implemented in this folder over one LMDB
 * environment (see bar-store.ts, checkpoint-store.ts, order-journal.ts, storage.ts).
 */
import type { Bar, BarSource, BarStats, Ohlcv } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';

/**
 * A reusable, allocation-free view of one bar, filled by the store's hot read path.
 * The caller owns it and passes it in again and again; the store writes fields, never allocates.
 */
export interface BarView extends Ohlcv, BarStats {
  /** BAR_SOURCE_CODE value of the source. */
  sourceCode: number;
  receivedAt: number;
}

export interface WriteResult {
  /** Bars written (new, corrected, or replacing a lower-precedence source). */
  written: number;
  /** Bars kept out because a higher-precedence source already holds that key. */
  shadowed: number;
  /** Bars whose values differed from another source's bar for the same key. */
  divergent: number;
}

export type OrderSide = 'buy' | 'sell';
export type OrderType = 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';
/** day: cancelled at the session's close (NYSE calendar); gtc: until cancelled; ioc: what the first chance does not fill is cancelled. */
export type TimeInForce = 'day' | 'gtc' | 'ioc';
/** A leg of a bracket: the entry, and its two exits, which are one-cancels-other. */
export type OrderRole = 'entry' | 'take_profit' | 'stop_loss';
export type OrderState = 'pending' | 'submitted' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

export interface OrderFill {
  /** Broker's execution id (unique per fill); used to never count a fill twice. */
  execId: string;
  qty: number;
  price: number;
  /** UTC epoch ms. */
  time: number;
  commission: number;
}

/** What an order is, beyond who sends it and how many shares. */
export interface OrderSpec {
  type: OrderType;
  limitPrice?: number;
  /** stop and stop_limit: the trigger price; trailing_stop: the initial stop, when given. */
  stopPrice?: number;
  /** trailing_stop: the distance the stop keeps from the best price, in dollars or in percent (exactly one). */
  trailAmount?: number;
  trailPercent?: number;
  /** Absent: `day` (and on records written before time in force existed). */
  tif?: TimeInForce;
  outsideRth?: boolean;
}

/** An order's symbol, side, size and terms: what the signal, the risk check, the journal and the broker all say of it. */
export interface OrderTicket extends OrderSpec {
  symbol: string;
  side: OrderSide;
  qty: number;
}

/** A bracket leg's place in its group. */
export interface OrderGroupLeg {
  /** Bracket legs: the entry's client order id, shared by the three legs. */
  groupId?: string;
  role?: OrderRole;
}

/** One order as the trading loop journals it, keyed by its deterministic client order id. */
export interface OrderRecord extends OrderTicket, OrderGroupLeg {
  clientOrderId: string;
  strategy: string;
  broker: 'paper' | 'ibkr';
  state: OrderState;
  /** The broker's id once it acknowledged the order (IBKR order id, paper id). */
  brokerOrderId?: string;
  filledQty: number;
  avgFillPrice: number;
  commission: number;
  fills: OrderFill[];
  /** Start of the bar that produced the signal, UTC epoch ms. */
  barStart: number;
  reason: string;
  rejectReason?: string;
  createdAt: number;
  updatedAt: number;
}

export type { Bar, BarSource, BarSize };

/** Read side of the bar cache. Reads are synchronous: they read LMDB's memory map, never wait on I/O. */
export interface BarReader {
  /** Fills `view` with the bar at (symbol, size, start); false when there is none. Allocates nothing. */
  readInto(symbol: string, size: BarSize, start: number, view: BarView): boolean;
  /** Fills `view` with the newest bar; false when there is none. Allocates nothing. */
  latestInto(symbol: string, size: BarSize, view: BarView): boolean;
  get(symbol: string, size: BarSize, start: number): Bar | undefined;
  latest(symbol: string, size: BarSize): Bar | undefined;
  /** The newest `n` bars (at or before `to` when given), oldest first. */
  latestN(symbol: string, size: BarSize, n: number, to?: number): Bar[];
  /** Bars with from <= start <= to (both inclusive), oldest first; at most `limit` when given. */
  range(symbol: string, size: BarSize, from: number, to: number, limit?: number): Bar[];
  /** Symbols that have at least one bar of this size (all sizes when omitted), sorted. */
  symbols(size?: BarSize): string[];
}

/** Write side of the bar cache. See bar-store.ts for what is durable when the promise resolves. */
export interface BarWriter {
  put(bar: Bar): Promise<WriteResult>;
  putMany(bars: readonly Bar[]): Promise<WriteResult>;
}

/** Small keyed state of the actors (what the collector fetched last, the ladder's position, ...). */
export interface CheckpointStore {
  get<T>(key: string): T | undefined;
  /** Resolves once the value is durable. */
  put<T>(key: string, value: T): Promise<void>;
  /**
   * put, durable when it returns (throws when it fails): offered only by a store that keeps values
   * in memory (backtests), so its callers can skip the promise. The disk stores do not offer it.
   */
  putNow?<T>(key: string, value: T): void;
  delete(key: string): Promise<void>;
  /**
   * Several puts (a value) and deletes (undefined) in one transaction; resolves once all are
   * durable. Optional: without it, callers put each key.
   */
  putMany?(entries: ReadonlyArray<readonly [key: string, value: unknown]>): Promise<void>;
}

/** The trading loop's order journal: an order is written here before it is sent. */
export interface OrderJournal {
  /** Inserts or replaces the record; resolves once it is durable. */
  put(record: OrderRecord): Promise<void>;
  /** put, durable when it returns (throws when it fails): only an in-memory journal (backtests) offers it. */
  putNow?(record: OrderRecord): void;
  get(clientOrderId: string): OrderRecord | undefined;
  /** All records, oldest first (by createdAt, then id). */
  all(): OrderRecord[];
  /** Records not yet in a final state (pending, submitted, partially_filled). */
  open(): OrderRecord[];
}

/**
 * Caller-owned columns for allocation-free range reads: row i of every column is one bar, oldest
 * first. Make one with `createBarColumns(capacity)` (bar-codec.ts) and reuse it.
 */
export interface BarColumns {
  /** Rows each column can hold; reads fill at most this many. */
  readonly capacity: number;
  readonly start: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  /** NaN where the source gives no vwap. */
  readonly vwap: Float64Array;
  /** -1 where the source gives no trade count. */
  readonly trades: Float64Array;
  readonly receivedAt: Float64Array;
  /** BAR_SOURCE_CODE of each row's source. */
  readonly sourceCode: Uint8Array;
}

/** The bar cache's columnar hot path (strategies' warm-up, indicator windows). Allocates nothing per bar. */
export interface BarColumnsReader {
  /** Fills `out` with the newest min(n, out.capacity) bars, oldest first; returns the rows filled. */
  latestNInto(symbol: string, size: BarSize, n: number, out: BarColumns): number;
  /** Fills `out` with bars from <= start <= to, oldest first, up to out.capacity; returns the rows filled. */
  rangeInto(symbol: string, size: BarSize, from: number, to: number, out: BarColumns): number;
}
