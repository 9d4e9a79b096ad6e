/**
 * Streamed bars on their way to the collector's write (stream-ingest.ts), in order:
 * - what arrives in one turn of the event loop is written as one batch; while a batch is being
 *   written, what arrives meanwhile gathers and is written as the next batch when it is done, so a
 *   burst (every symbol's bar at a minute's close) costs a few transactions, not one per frame or
 *   per symbol;
 * - while held (after a (re)connect, until REST has filled the gap), bars wait in memory and are
 *   released in arrival order.
 */
import type { Bar } from '../../market/bar.ts';
import type { Logger } from '../../runtime/log.ts';
import type { SourceName } from '../../sources/types.ts';

export class StreamBatches {
  private holding = false;
  private held: Bar[] = [];
  private pending: Bar[] = [];
  private flushScheduled = false;
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
      setImmediate(() => this.flush(source));
    }
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
