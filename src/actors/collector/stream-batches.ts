/**
 * Streamed bars on their way to the collector's write (stream-ingest.ts), in order:
 * - bars gather while they keep arriving turn after turn of the event loop, and are written as one
 *   batch after the first turn in which none arrived (or after GATHER_TURNS turns of arrivals): a
 *   minute's close (every symbol's bar, in dozens of frames over several socket reads) is one write,
 *   instead of the first frames' write and fsync holding all the others back. A lone frame costs
 *   one idle turn. Up to MAX_IN_FLIGHT batches are written at once (the store queues the second
 *   into the next transaction, so it does not wait for the first one's fsync before it starts);
 *   beyond that, what arrives gathers and is written when a write is done. A bar identical to one
 *   still being written (same key, source and values) is skipped, as the cache's identical-bar
 *   check would once that write is committed. A burst costs a few transactions, not one per frame
 *   or per symbol;
 * - while held (after a (re)connect, until REST has filled the gap), bars wait in memory and are
 *   released in arrival order.
 */
import { type Bar, sameValues } from '../../market/bar.ts';
import type { Logger } from '../../runtime/log.ts';
import type { SourceName } from '../../sources/types.ts';

/** Batches being written at once. */
export const MAX_IN_FLIGHT = 2;

/** Turns of arrivals a batch waits for at most before it is written. */
export const GATHER_TURNS = 32;

export class StreamBatches {
  private holding = false;
  private held: Bar[] = [];
  private pending: Bar[] = [];
  private flushScheduled = false;
  /** Bars pending at the last check, and checks made, while gathering. */
  private seenAtCheck = 0;
  private turns = 0;
  /** The writes under way, and the bars they carry by key (the newest per key). */
  private readonly writes = new Set<Promise<void>>();
  private readonly inFlight = new Map<string, Bar>();

  constructor(
    private readonly write: (source: SourceName, bars: Bar[]) => Promise<void>,
    private readonly log: Logger,
  ) {}

  add(source: SourceName, bar: Bar): void {
    if (this.holding) {
      this.held.push(bar);
      return;
    }
    this.pending.push(bar);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.seenAtCheck = 0;
      this.turns = 0;
      setImmediate(() => this.gather(source));
    }
  }

  /** Once per turn while bars keep coming: writes when a turn brought none (or after GATHER_TURNS). */
  private gather(source: SourceName): void {
    const n = this.pending.length;
    if (n > this.seenAtCheck && ++this.turns < GATHER_TURNS && !this.holding) {
      this.seenAtCheck = n;
      setImmediate(() => this.gather(source));
      return;
    }
    this.flush(source);
  }

  /** From now on bars wait until `release`. */
  hold(): void {
    this.holding = true;
  }

  /** Ends the hold; the bars held are written (`keep`) or dropped. */
  release(source: SourceName, keep: boolean): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    if (held.length > 0 && keep) {
      this.pending.push(...held);
      this.flush(source);
    }
  }

  /** Ends the hold and drops what it held (the stream closed). */
  drop(): void {
    this.holding = false;
    this.held = [];
  }

  /** Resolves when the writes under way (and those they lead to) are done. */
  async idle(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
  }

  private flush(source: SourceName): void {
    this.flushScheduled = false;
    if (this.writes.size < MAX_IN_FLIGHT && this.pending.length > 0) this.start(source);
  }

  private start(source: SourceName): void {
    const bars: Bar[] = [];
    for (const b of this.pending) {
      const twin = this.inFlight.get(keyOf(b));
      if (twin === undefined || !identical(twin, b)) bars.push(b);
    }
    this.pending = [];
    if (bars.length === 0) return;
    for (const b of bars) this.inFlight.set(keyOf(b), b);
    const done = this.write(source, bars)
      .catch((err: unknown) => {
        this.log.warn({ source, err: (err as Error).message }, 'streamed bars not written');
      })
      .finally(() => {
        for (const b of bars) {
          const k = keyOf(b);
          if (this.inFlight.get(k) === b) this.inFlight.delete(k);
        }
        this.writes.delete(done);
        // What gathered while every write slot was taken; a gathering under way writes by itself.
        if (!this.flushScheduled) this.flush(source);
      });
    this.writes.add(done);
  }
}

function keyOf(b: Bar): string {
  return `${b.symbol}\u0000${b.barSize}\u0000${b.start}`;
}

/** Same source and values: what the cache's identical-bar check compares (bar-writer.ts cachedAs). */
function identical(a: Bar, b: Bar): boolean {
  return a.source === b.source && sameValues(a, b);
}
