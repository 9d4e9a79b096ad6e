/**
 * The arbiter's messages to the trader's thread, with its `bar` messages gathered: every bar handed
 * on in one event-loop turn goes as one `bars` message (protocol.ts), sent at the end of the turn's
 * microtasks. Any other message (`warmup`, `feed`) first sends the bars gathered before it, so the
 * trader sees everything in the order the arbiter sent it.
 */
import type { BarSize } from '../../market/bar-size.ts';
import type { ArbiterToTrader, BarRef, BarsMessage } from './protocol.ts';

export interface TraderBatchOptions {
  /**
   * `post` copies the message before it returns (postMessage serializes it synchronously): the
   * batch then keeps one message and its three arrays for good and refills them each turn, so
   * gathering a turn's bars allocates nothing (no array grown bar by bar on the arbiter's hot path,
   * so no young-generation collection started by it in the middle of a notice). Without, every
   * turn's message is new and may be kept by `post`.
   */
  reuse?: boolean;
}

export class TraderBatch {
  private batch: BarsMessage | null = null;
  /** Bars gathered in `batch` (its arrays may be longer: reused, they are cut to this at the post). */
  private count = 0;
  /** The reused message (reuse mode). */
  private readonly kept: BarsMessage | null;
  private queued = false;
  private readonly flushQueued = () => {
    this.queued = false;
    this.flush();
  };

  constructor(
    private readonly post: (msg: ArbiterToTrader) => void,
    opts: TraderBatchOptions = {},
  ) {
    this.kept = opts.reuse ? { type: 'bars', barSize: '1Min', symbols: [], starts: [], sources: [] } : null;
  }

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
      b = this.kept ?? { type: 'bars', barSize: msg.barSize, symbols: [], starts: [], sources: [] };
      b.barSize = msg.barSize;
      this.batch = b;
      this.count = 0;
    }
    const i = this.count++;
    if (i < b.symbols.length) {
      b.symbols[i] = msg.symbol;
      b.starts[i] = msg.start;
      b.sources[i] = msg.source;
    } else {
      b.symbols.push(msg.symbol);
      b.starts.push(msg.start);
      b.sources.push(msg.source);
    }
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
    const n = this.count;
    if (b.symbols.length !== n) {
      // A reused message left longer by a bigger turn: cut to this turn's bars.
      b.symbols.length = n;
      b.starts.length = n;
      b.sources.length = n;
    }
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
