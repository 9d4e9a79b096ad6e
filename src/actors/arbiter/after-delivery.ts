/**
 * What the arbiter's thread does for each delivery besides handing the key to the trader: the
 * dashboard's `bar` / `feed_switch` events (one cache read and one postMessage per bar) and the
 * delivery log's record (an LMDB write). They run in the next turn of the event loop, in order,
 * after the turn's bars went to the trader, and CHUNK at a time, so a burst of thousands of bars
 * reaches the trader before the thread spends time on them, and the next notice is not kept
 * waiting behind them.
 *
 * The queue is a set of parallel arrays that keep their room (a ring that is reset when it empties):
 * queueing a bar allocates nothing, on the arbiter's hot path; the jobs' callbacks get a reused
 * object, read synchronously.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { BarSource } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import type { ArbiterToTrader, BarRef, Rung } from './protocol.ts';

/** Jobs per turn: a burst's side effects give way to the next notice between chunks. */
const CHUNK = 256;

/** A job's kind: report a bar, record a bar, report another message (kept whole in `others`). */
const REPORT_BAR = 0;
const RECORD_BAR = 1;
const REPORT_OTHER = 2;

/** Queued jobs left over after this many have run are moved to the front (the arrays never grow without end). */
const COMPACT_AFTER = 65_536;

export class AfterDelivery {
  private readonly kinds: number[] = [];
  private readonly symbols: string[] = [];
  private readonly barSizes: BarSize[] = [];
  private readonly starts: number[] = [];
  private readonly sources: BarSource[] = [];
  private readonly rungs: Rung[] = [];
  private readonly ats: number[] = [];
  private readonly others: (ArbiterToTrader | null)[] = [];
  private head = 0;
  private tail = 0;
  /** Handed to the callbacks, refilled per job. */
  private readonly barMsg: Extract<ArbiterToTrader, { type: 'bar' }> = { type: 'bar', symbol: '', barSize: '1Min', start: 0, source: 'sim' };
  private readonly barRef: BarRef = { symbol: '', barSize: '1Min', start: 0, source: 'sim' };
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

  /** A message handed to the trader, for the dashboard (a reused `bar` message is copied into the queue). */
  reported(msg: ArbiterToTrader): void {
    // Fields written here, not passed on: a double passed to a call that is not inlined is boxed.
    const i = this.next();
    if (msg.type === 'bar') {
      this.kinds[i] = REPORT_BAR;
      this.symbols[i] = msg.symbol;
      this.barSizes[i] = msg.barSize;
      this.starts[i] = msg.start;
      this.sources[i] = msg.source;
      this.others[i] = null;
    } else {
      this.kinds[i] = REPORT_OTHER;
      this.others[i] = msg;
    }
  }

  /** A bar handed on and the rung that served it, for the delivery log (timed now). */
  delivered(bar: BarRef, rung: Rung): void {
    const i = this.next();
    this.kinds[i] = RECORD_BAR;
    this.symbols[i] = bar.symbol;
    this.barSizes[i] = bar.barSize;
    this.starts[i] = bar.start;
    this.sources[i] = bar.source;
    this.rungs[i] = rung;
    this.ats[i] = this.clock.now();
    this.others[i] = null;
  }

  /** Jobs queued and not yet run. */
  get pending(): number {
    return this.tail - this.head;
  }

  /** Runs everything queued now (shutdown). */
  run(): void {
    this.runSome(Infinity);
  }

  /** Up to `max` jobs; the rest in a later turn, so notices that arrived meanwhile go first. */
  private runSome(max: number): void {
    const end = Math.min(this.tail, this.head + max);
    for (let i = this.head; i < end; i++) {
      // Moved past first: a callback that queues more (or throws) finds the queue consistent.
      this.head = i + 1;
      const kind = this.kinds[i];
      if (kind === REPORT_OTHER) {
        const msg = this.others[i]!;
        this.others[i] = null;
        this.report(msg);
      } else if (kind === REPORT_BAR) {
        const m = this.barMsg;
        m.symbol = this.symbols[i];
        m.barSize = this.barSizes[i];
        m.start = this.starts[i];
        m.source = this.sources[i];
        this.report(m);
      } else {
        const b = this.barRef;
        b.symbol = this.symbols[i];
        b.barSize = this.barSizes[i];
        b.start = this.starts[i];
        b.source = this.sources[i];
        this.record(b, this.rungs[i], this.ats[i]);
      }
    }
    if (this.head === this.tail) {
      this.head = 0;
      this.tail = 0;
    } else {
      // Amortized: the jobs moved are at most as many as those run since the last move.
      if (this.head >= COMPACT_AFTER && this.head >= this.tail - this.head) this.compact();
      this.schedule();
    }
  }

  private compact(): void {
    const n = this.tail - this.head;
    for (let j = 0; j < n; j++) {
      const i = this.head + j;
      this.kinds[j] = this.kinds[i];
      this.symbols[j] = this.symbols[i];
      this.barSizes[j] = this.barSizes[i];
      this.starts[j] = this.starts[i];
      this.sources[j] = this.sources[i];
      this.rungs[j] = this.rungs[i];
      this.ats[j] = this.ats[i];
      this.others[j] = this.others[i];
    }
    this.head = 0;
    this.tail = n;
  }

  /** The index of a new job at the tail; every array gets a value there (no holes). */
  private next(): number {
    const i = this.tail++;
    if (i === this.kinds.length) {
      this.kinds.push(0);
      this.symbols.push('');
      this.barSizes.push('1Min');
      this.starts.push(0.5);
      this.sources.push('sim');
      this.rungs.push('cache');
      this.ats.push(0.5);
      this.others.push(null);
    }
    this.schedule();
    return i;
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.runScheduled);
    }
  }
}
