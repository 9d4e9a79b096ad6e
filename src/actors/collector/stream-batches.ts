/**
 * Streamed bars on their way to the collector's write (stream-ingest.ts), in order:
 * - bars gather while they keep arriving turn after turn of the event loop, and are written as one
 *   batch after the first turn in which none arrived (or after GATHER_TURNS turns of arrivals): a
 *   minute's close (every symbol's bar, in dozens of frames over several socket reads) is one write,
 *   instead of the first frames' write and fsync holding all the others back. A lone frame costs
 *   one idle turn. While a batch is being written, what arrives meanwhile gathers and is written as
 *   the next batch when it is done, so a burst costs a few transactions, not one per frame or per
 *   symbol;
 * - while held (after a (re)connect, until REST has filled the gap), bars wait in memory and are
 *   released in arrival order.
 */
import type { Bar } from '../../market/bar.ts';
import type { Logger } from '../../runtime/log.ts';
import type { SourceName } from '../../sources/types.ts';

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
  private draining = false;
  private writing: Promise<void> = Promise.resolve();

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

  /** Resolves when the writes under way are done. */
  idle(): Promise<void> {
    return this.writing;
  }

  private flush(source: SourceName): void {
    this.flushScheduled = false;
    if (this.draining || this.pending.length === 0) return;
    this.draining = true;
    this.writing = this.drain(source);
  }

  private async drain(source: SourceName): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const bars = this.pending;
        this.pending = [];
        await this.write(source, bars).catch((err: unknown) => {
          this.log.warn({ source, err: (err as Error).message }, 'streamed bars not written');
        });
      }
    } finally {
      this.draining = false;
    }
  }
}
