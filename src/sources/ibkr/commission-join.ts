/**
 * The commission join: TWS sends an execution's commission report after the execution (or, rarely,
 * before), keyed by execId. A fill is held until its commission arrives, so it is sent once and
 * complete; after `waitMs` without a report it is given commission 0 with a warning, and a report
 * that comes later is logged and counted as late. Execution times are read from TWS's formats here.
 */
import type { Clock } from '../../market/clock.ts';
import type { IbkrExecution } from './order-client.ts';
import { parseTwsDate } from './tws-date.ts';

/**
 * An execution with its commission joined and its time read (UTC epoch ms). `orderRef` is '' when
 * TWS did not report one.
 */
export interface IbFill extends Omit<IbkrExecution, 'time' | 'commission'> {
  time: number;
  commission: number;
}

interface JoinLog {
  warn(obj: object, msg: string): void;
}

/** Commission reports by execId, and waits for the ones not yet here. */
class CommissionBook {
  private readonly known = new Map<string, number>();
  private readonly waiting = new Map<string, Set<(c: number | undefined) => void>>();

  constructor(
    private readonly clock: Clock,
    private readonly limit: number,
  ) {}

  set(execId: string, commission: number): void {
    this.known.set(execId, commission);
    if (this.known.size > this.limit) this.known.delete(this.known.keys().next().value!);
    const waiters = this.waiting.get(execId);
    if (waiters) for (const w of [...waiters]) w(commission);
  }

  get(execId: string): number | undefined {
    return this.known.get(execId);
  }

  /** The commission once reported, or undefined after `ms` of clock time. */
  wait(execId: string, ms: number): Promise<number | undefined> {
    const c = this.known.get(execId);
    if (c !== undefined) return Promise.resolve(c);
    return new Promise((resolve) => {
      let set = this.waiting.get(execId);
      if (!set) this.waiting.set(execId, (set = new Set()));
      const waiters = set;
      const done = (v: number | undefined) => {
        timer.cancel();
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(execId) === waiters) this.waiting.delete(execId);
        resolve(v);
      };
      const timer = this.clock.setTimeout(() => done(undefined), ms);
      waiters.add(done);
    });
  }

  /** Ends every wait with undefined. */
  close(): void {
    for (const set of [...this.waiting.values()]) for (const w of [...set]) w(undefined);
  }
}

export class CommissionJoin {
  /** Fills given commission 0 because no report came in time. */
  fillsWithoutCommission = 0;
  /** Commission reports that came after their fill had been given 0. */
  lateCommissions = 0;
  private readonly book: CommissionBook;
  /** Fills given commission 0, so a late report can be reported. */
  private readonly uncommissioned = new Set<string>();
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: JoinLog,
    private readonly waitMs: number,
    limit: number,
  ) {
    this.book = new CommissionBook(clock, limit);
  }

  /** A commission report from TWS. */
  report(execId: string, commission: number): void {
    this.book.set(execId, commission);
    if (this.uncommissioned.delete(execId)) {
      this.lateCommissions++;
      this.log.warn({ execId, commission }, 'a commission report came after its fill was recorded with commission 0; the journal keeps 0 for this fill');
    }
  }

  /** A commission TWS listed with an execution (executions()). */
  learn(execId: string, commission: number): void {
    this.book.set(execId, commission);
  }

  known(execId: string): number | undefined {
    return this.book.get(execId);
  }

  /** The fill of `r`, waiting up to waitMs for its commission when it is not known yet. */
  async fill(r: IbkrExecution, commission: number | undefined): Promise<IbFill> {
    let c = commission ?? (await this.book.wait(r.execId, this.waitMs));
    if (c === undefined) {
      c = 0;
      if (!this.closed && !this.uncommissioned.has(r.execId)) {
        this.uncommissioned.add(r.execId);
        this.fillsWithoutCommission++;
        this.log.warn({ execId: r.execId, clientOrderId: r.orderRef }, `no commission report within ${this.waitMs} ms; the fill is recorded with commission 0`);
      }
    }
    let time: number;
    try {
      time = parseTwsDate(r.time);
    } catch (err) {
      time = this.clock.now();
      this.log.warn({ execId: r.execId, time: r.time, err: (err as Error).message }, 'execution time unreadable; using the clock');
    }
    return { execId: r.execId, orderId: r.orderId, orderRef: r.orderRef, symbol: r.symbol, side: r.side, qty: r.qty, price: r.price, time, commission: c };
  }

  /** Ends every wait (their fills get commission 0, without a warning). */
  close(): void {
    this.closed = true;
    this.book.close();
  }
}
