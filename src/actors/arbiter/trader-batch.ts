/**
 * The arbiter's messages to the trader's thread, with its `bar` messages gathered: every bar handed
 * on in one event-loop turn goes as one `bars` message (protocol.ts), sent at the end of the turn's
 * microtasks. Any other message (`warmup`, `feed`) first sends the bars gathered before it, so the
 * trader sees everything in the order the arbiter sent it.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { ArbiterToTrader, BarRef, BarsMessage } from './protocol.ts';

export class TraderBatch {
  private batch: BarsMessage | null = null;
  private queued = false;
  private readonly flushQueued = () => {
    this.queued = false;
    this.flush();
  };

  constructor(private readonly post: (msg: ArbiterToTrader) => void) {}

  /** Takes any message; a `bar` message object may be reused by the caller once this returns. */
  send(msg: ArbiterToTrader): void {
    if (msg.type !== 'bar') {
      this.flush();
      this.post(msg);
      return;
    }
    let b = this.batch;
    if (b !== null && b.barSize !== msg.barSize) {
      this.flush();
      b = null;
    }
    if (b === null) {
      b = { type: 'bars', barSize: msg.barSize, symbols: [], starts: [], sources: [] };
      this.batch = b;
    }
    b.symbols.push(msg.symbol);
    b.starts.push(msg.start);
    b.sources.push(msg.source);
    if (!this.queued) {
      this.queued = true;
      queueMicrotask(this.flushQueued);
    }
  }

  /** Sends the bars gathered so far. */
  flush(): void {
    const b = this.batch;
    if (b === null) return;
    this.batch = null;
    this.post(b);
  }
}

/** Calls `fn` with each bar of a `bars` message, in order (the object passed is reused). */
export function forEachBar(msg: BarsMessage, fn: (bar: BarRef) => void): void {
  const ref: BarRef = { symbol: '', barSize: msg.barSize as BarSize, start: 0, source: 'sim' };
  for (let i = 0; i < msg.symbols.length; i++) {
    ref.symbol = msg.symbols[i];
    ref.start = msg.starts[i];
    ref.source = msg.sources[i];
    fn(ref);
  }
}
