/**
 * What the arbiter's thread does for each delivery besides handing the key to the trader: the
 * dashboard's `bar` / `feed_switch` events (one cache read and one postMessage per bar) and the
 * delivery log's record (an LMDB write). They run in the next turn of the event loop, in order,
 * after the turn's bars went to the trader, so a burst of thousands of bars reaches the trader
 * before the thread spends time on them.
 */
import type { Clock } from '../../market/clock.ts';
import type { ArbiterToTrader, BarRef, Rung } from './protocol.ts';

type Job = { kind: 'report'; msg: ArbiterToTrader } | { kind: 'record'; bar: BarRef; rung: Rung; at: number };

export class AfterDelivery {
  private jobs: Job[] = [];
  private scheduled = false;
  private readonly runScheduled = () => {
    this.scheduled = false;
    this.run();
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

  /** Runs what is queued now (shutdown). */
  run(): void {
    const jobs = this.jobs;
    this.jobs = [];
    for (const j of jobs) {
      if (j.kind === 'report') this.report(j.msg);
      else this.record(j.bar, j.rung, j.at);
    }
  }

  private push(job: Job): void {
    this.jobs.push(job);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runScheduled);
    }
  }
}
