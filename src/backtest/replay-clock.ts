/**
 * The backtest's clock: time is wherever the replay put it, the close of the bar being handled.
 * Timers fire, in time order, when the replay moves time past them (nothing on the bar-to-order
 * path sets one; the contract is kept for code that does).
 */
import { sleepWith, type Clock, type TimerHandle } from '../market/clock.ts';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class ReplayClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private seq = 0;

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith(this, ms, signal);
  }

  /** Moves time to `t` (never backwards), firing the timers due on the way. */
  set(t: number): void {
    if (t <= this.current) return;
    if (this.timers.length > 0) this.fire(t);
    this.current = t;
  }

  private fire(target: number): void {
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: Timer | undefined;
      for (const x of this.timers) if (x.at <= target && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      if (!next) return;
      this.current = Math.max(this.current, next.at);
      next.cancelled = true;
      next.fn();
    }
  }
}
