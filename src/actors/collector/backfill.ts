/**
 * One background backfill at a time: fills the cache for one symbol over [from, to) in chunks, so
 * progress can be shown, from the source active when it started.
 */
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { HistoricalBarSource, SourceError } from '../../sources/types.ts';
import { CollectorError, type BackfillJob } from './protocol.ts';

const DAY_MS = 86_400_000;
/** Bars per fetchBars call when the source does not say (see HistoricalBarSource.backfillChunkBars). */
const DEFAULT_CHUNK_BARS = 20_000;

export interface BackfillRun {
  source: HistoricalBarSource;
  symbol: string;
  barSize: BarSize;
  from: number;
  /** Already cut back to the start of the bar still forming. */
  to: number;
  /** Writes one chunk's bars; returns how many the store wrote. */
  write(bars: Bar[]): Promise<number>;
  /** Records a failure (the collector's error list). */
  recordError(err: unknown): void;
}

export class Backfiller {
  private job: BackfillJob | null = null;
  private abortController: AbortController | null = null;
  private running: Promise<void> | null = null;

  /** Throws CONFLICT while one runs. */
  start(run: BackfillRun): BackfillJob {
    if (this.job?.state === 'running') {
      throw new CollectorError('CONFLICT', `a backfill of ${this.job.symbol} is running`);
    }
    const { from, to, source, symbol, barSize } = run;
    const job: BackfillJob = {
      symbol,
      bar_size: barSize,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      state: 'running',
      done_until: new Date(from).toISOString(),
      progress: 0,
      bars_written: 0,
      error: null,
    };
    this.job = job;
    const abort = new AbortController();
    this.abortController = abort;
    const chunk = Math.max(barSizeMs(barSize) * (source.backfillChunkBars ?? DEFAULT_CHUNK_BARS), DAY_MS);
    this.running = (async () => {
      try {
        for (let t = from; t < to; t += chunk) {
          const end = Math.min(t + chunk, to);
          const bars = await source.fetchBars(symbol, barSize, t, end, abort.signal);
          job.bars_written += await run.write(bars);
          job.done_until = new Date(end).toISOString();
          job.progress = (end - from) / (to - from);
        }
        job.progress = 1;
        job.state = 'done';
      } catch (err) {
        job.state = 'failed';
        const e = err as SourceError;
        job.error = e?.vendorMessage && !e.message.includes(e.vendorMessage) ? `${e.message} (${e.vendorMessage})` : String(e?.message ?? err);
        run.recordError(err);
      } finally {
        if (this.abortController === abort) {
          this.abortController = null;
          this.running = null;
        }
      }
    })();
    return { ...job };
  }

  status(): BackfillJob | null {
    return this.job && { ...this.job };
  }

  /** Aborts the backfill under way, if any, and waits for it to end. */
  async abort(why: Error): Promise<void> {
    this.abortController?.abort(why);
    await this.running;
  }
}
