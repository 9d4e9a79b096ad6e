/**
 * What the arbiter's thread does for each delivery besides handing the key to the trader: the
 * dashboard's `bar` / `feed_switch` events (one cache read and one postMessage per bar) and the
 * delivery log's record (an LMDB write). They run in the next turn of the event loop, in order,
 * after the turn's bars went to the trader, and CHUNK at a time, so a burst of thousands of bars
 * reaches the trader before the thread spends time on them, and the next notice is not kept
 * waiting behind them.
 */
import type { Clock } from '../../market/clock.ts';
import type { ArbiterToTrader, BarRef, Rung } from './protocol.ts';

/** Jobs per turn: a burst's side effects give way to the next notice between chunks. */
const CHUNK = 256;

type Job = { kind: 'report'; msg: ArbiterToTrader } | { kind: 'record'; bar: BarRef; rung: Rung; at: number };

export class AfterDelivery {
  private jobs: Job[] = [];
  private scheduled = false;
  private readonly runScheduled = () => {
    this.scheduled = false;
    this.runSome(CHUNK);
  };

  constructor(
    private readonly clock: Clock,
    private readonly report: (msg: ArbiterToTrader) => void,
    private readonly record: (bar: BarRef, rung: Rung, at: number) => void,
  ) {}

  /** A message handed to the trader, for the dashboard (a reused `bar` message is copied). */
  reported(msg: ArbiterToTrader): void {
    this.push({ kind: 'report', msg: msg.type === 'bar' ? { ...msg } : msg });
  }

  /** A bar handed on and the rung that served it, for the delivery log (timed now). */
  delivered(bar: BarRef, rung: Rung): void {
    this.push({ kind: 'record', bar: { symbol: bar.symbol, barSize: bar.barSize, start: bar.start, source: bar.source }, rung, at: this.clock.now() });
  }

  /** Runs everything queued now (shutdown). */
  run(): void {
    this.runSome(Infinity);
  }

  /** Up to `max` jobs; the rest in a later turn, so notices that arrived meanwhile go first. */
  private runSome(max: number): void {
    const n = Math.min(max, this.jobs.length);
    const jobs = this.jobs.splice(0, n);
    for (const j of jobs) {
      if (j.kind === 'report') this.report(j.msg);
      else this.record(j.bar, j.rung, j.at);
    }
    if (this.jobs.length > 0) this.schedule();
  }

  private push(job: Job): void {
    this.jobs.push(job);
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runScheduled);
    }
  }
}
