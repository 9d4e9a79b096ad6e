/**
 * The collector's `bars-written` notices, gathered: every key written in one event-loop turn goes
 * to the arbiter in one message (protocol.ts), so a stream's minute close for thousands of symbols
 * is one postMessage, not one per symbol. Sent at the end of the turn's microtasks (before any
 * timer or I/O callback), so a lone write is not held back.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { CollectorToArbiter } from './protocol.ts';

export class WrittenBatch {
  /** Names this batch's ids (protocol.ts): another batch (a restarted collector) numbers its symbols anew. */
  readonly epoch = Math.floor(Math.random() * 2 ** 52);
  /** Symbol -> its id, given in the order symbols are first written. */
  private readonly idOf = new Map<string, number>();
  private barSize: BarSize | null = null;
  private symbols: string[] = [];
  private ids: number[] = [];
  private counts: number[] = [];
  private starts: number[] = [];
  private sources: number[] = [];
  private queued = false;
  private readonly flushQueued = () => {
    this.queued = false;
    this.flush();
  };

  constructor(private readonly send: (msg: CollectorToArbiter) => void) {}

  /** `sources`: the source code held for each start, when the writer knows it. */
  add(barSize: BarSize, symbol: string, starts: readonly number[], sources?: readonly number[]): void {
    if (starts.length === 0) return;
    if (this.barSize !== null && this.barSize !== barSize) this.flush();
    this.barSize = barSize;
    let id = this.idOf.get(symbol);
    if (id === undefined) {
      id = this.idOf.size;
      this.idOf.set(symbol, id);
    }
    this.symbols.push(symbol);
    this.ids.push(id);
    this.counts.push(starts.length);
    for (let i = 0; i < starts.length; i++) {
      this.starts.push(starts[i]);
      this.sources.push(sources?.[i] ?? -1);
    }
    if (!this.queued) {
      this.queued = true;
      queueMicrotask(this.flushQueued);
    }
  }

  /** Sends what is gathered now. */
  flush(): void {
    if (this.barSize === null) return;
    const msg: CollectorToArbiter = {
      type: 'bars-written',
      barSize: this.barSize,
      symbols: this.symbols,
      counts: this.counts,
      starts: this.starts,
      sources: this.sources,
      ids: this.ids,
      epoch: this.epoch,
    };
    this.barSize = null;
    this.symbols = [];
    this.ids = [];
    this.counts = [];
    this.starts = [];
    this.sources = [];
    this.send(msg);
  }
}

/** Calls `fn` once per symbol of a `bars-written` message with its slice [from, to) of `msg.starts` (and of `msg.sources`). */
export function forEachWritten(msg: CollectorToArbiter, fn: (symbol: string, starts: readonly number[], from: number, to: number, sources: readonly number[]) => void): void {
  let at = 0;
  for (let i = 0; i < msg.symbols.length; i++) {
    const n = msg.counts[i];
    fn(msg.symbols[i], msg.starts, at, at + n, msg.sources);
    at += n;
  }
}

/** Events emitted per turn: a burst's events give way to I/O (the next frames, the next batch's commit) between chunks. */
export const EVENTS_PER_TURN = 256;

/**
 * Calls `emit` for each written series from the next turn of the event loop on, in order, at most
 * EVENTS_PER_TURN per turn: a minute's close for 5,000 symbols is 5,000 events (one postMessage
 * each), which in one turn would keep the stream's next frames and the next batch's commit waiting
 * behind them.
 */
export class DeferredEvents {
  private queue: Array<[BarSize, string, number[]]> = [];
  private head = 0;
  private scheduled = false;
  private readonly run = () => {
    this.scheduled = false;
    const end = Math.min(this.queue.length, this.head + EVENTS_PER_TURN);
    while (this.head < end) {
      const [barSize, symbol, starts] = this.queue[this.head++];
      this.emit(barSize, symbol, starts);
    }
    if (this.head < this.queue.length) this.schedule();
    else {
      this.queue = [];
      this.head = 0;
    }
  };

  constructor(private readonly emit: (barSize: BarSize, symbol: string, starts: number[]) => void) {}

  push(barSize: BarSize, symbol: string, starts: number[]): void {
    this.queue.push([barSize, symbol, starts]);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }
}
