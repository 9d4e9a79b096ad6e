/**
 * When the collector's REST cycles run (collector.ts): one timer for the next cycle, never two
 * cycles at once (a cycle asked for while one runs joins it; a timer that fires during one waits
 * for it, then runs its own), and a total deadline per cycle: whatever a source does (a drip-fed
 * body, a stall), the cycle is aborted, counted as overrun and shown, and the schedule goes on.
 */
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import { SourceError, type SourceName } from '../../sources/types.ts';

export interface CycleRunnerOptions {
  clock: Clock;
  log: Logger;
  /** Default 10 minutes. */
  deadlineMs?: number;
  /** False while the collector is stopped: nothing is scheduled. */
  running(): boolean;
  /** The active source (named in the overrun error). */
  sourceName(): SourceName;
  /** One cycle. */
  body(signal: AbortSignal): Promise<void>;
  /** When the cycle after the one that just ran is due. */
  next(): number;
  recordError(source: SourceName, err: unknown): void;
  /** After every cycle, whatever its outcome. */
  done(): void;
}

export class CycleRunner {
  nextAt: number | null = null;
  cycling: Promise<void> | null = null;
  cycleStartedAt: number | null = null;
  overruns = 0;
  private timer: TimerHandle | undefined;
  private abortCtl: AbortController | null = null;

  constructor(private readonly o: CycleRunnerOptions) {}

  /** A timer is set for the next cycle. */
  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.nextAt = null;
  }

  /** Aborts the cycle under way (its requests end with `reason`). */
  abort(reason: unknown): void {
    this.abortCtl?.abort(reason);
  }

  schedule(at: number): void {
    this.cancel();
    if (!this.o.running()) return;
    this.nextAt = at;
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      this.nextAt = null;
      // A cycle still under way (collectNow, a start during a cycle) ran with the symbols of its
      // time: let it finish, then run the one this timer is for.
      void (async () => {
        await this.cycling;
        if (this.o.running()) await this.run();
        if (this.o.running() && !this.timer) this.schedule(this.o.next());
      })();
    }, at - this.o.clock.now());
  }

  /** The cadence changed: the timer set moves to the new next cycle. */
  reschedule(): void {
    if (this.o.running() && this.timer) this.schedule(this.o.next());
  }

  /** Runs a cycle now, or joins the one under way. Never rejects: a failure is recorded. */
  run(): Promise<void> {
    if (this.cycling) return this.cycling;
    const abort = new AbortController();
    this.abortCtl = abort;
    const source = this.o.sourceName();
    const deadlineMs = this.o.deadlineMs ?? 10 * 60_000;
    const overrun = new SourceError(source, 'TIMEOUT', `${source}: collection cycle overran its ${deadlineMs} ms deadline`);
    const deadline = this.o.clock.setTimeout(() => abort.abort(overrun), deadlineMs);
    this.cycleStartedAt = this.o.clock.now();
    this.cycling = this.o
      .body(abort.signal)
      .catch((err: unknown) => {
        if (abort.signal.reason !== overrun) this.o.recordError(this.o.sourceName(), err);
      })
      .finally(() => {
        deadline.cancel();
        if (abort.signal.reason === overrun) {
          this.overruns++;
          this.o.recordError(this.o.sourceName(), overrun);
          this.o.log.warn({ deadline_ms: deadlineMs }, 'collection cycle overran its deadline; aborted');
        }
        this.cycling = null;
        this.abortCtl = null;
        this.cycleStartedAt = null;
        this.o.done();
      });
    return this.cycling;
  }
}
