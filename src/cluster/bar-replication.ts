/**
 * Bars across the cluster. The owner of a symbol publishes every bar it writes to
 * `bars.<bar_size>.<symbol>` in BARKEEP_BARS; every node (the owner included) keeps its LMDB cache
 * as a replica fed by its own durable consumer, so `/bars` and every arbiter see every symbol.
 *
 * A bar's message id is made of its source, symbol, size, start and content, so a bar published
 * twice (a retry, two owners during a hand-over) is stored once by JetStream, while a corrected bar
 * (same key, new values) is a new message and replaces the old one in every replica by the usual
 * cross-source rule of the bar store.
 * The replica acknowledges a batch only after the store has made it durable: a node killed in the
 * middle gets the batch again, and writing a bar twice changes nothing.
 */
import { createHash } from 'node:crypto';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Bar } from '../market/bar.ts';
import type { BarWriter } from '../storage/types.ts';
import { BARS_STREAM, barSubject } from './subjects.ts';

/** The fields that travel; receivedAt is the replica's own. */
type WireBar = Omit<Bar, 'receivedAt'>;

function toWire(b: Bar): WireBar {
  return {
    symbol: b.symbol,
    barSize: b.barSize,
    start: b.start,
    open: b.open,
    high: b.high,
    low: b.low,
    close: b.close,
    volume: b.volume,
    vwap: Number.isNaN(b.vwap) ? (null as unknown as number) : b.vwap,
    trades: b.trades,
    source: b.source,
  };
}

export function barMsgId(b: Bar): string {
  const body = JSON.stringify(toWire(b));
  return `${b.source}|${b.symbol}|${b.barSize}|${b.start}|${createHash('sha1').update(body).digest('hex').slice(0, 16)}`;
}

export class BarPublisher {
  published = 0;
  duplicates = 0;
  constructor(private readonly js: JetStreamClient) {}

  /**
   * Publishes with at most `inFlight` acknowledgements outstanding: a burst of thousands of bars
   * goes out as fast as JetStream stores them, without holding every one unacknowledged at once.
   */
  async publish(bars: readonly Bar[], inFlight = 256): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < bars.length) {
        const b = bars[next++];
        const ack = await this.js.publish(barSubject(b.barSize, b.symbol), JSON.stringify(toWire(b)), { msgID: barMsgId(b) });
        if (ack.duplicate) this.duplicates++;
        else this.published++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, bars.length) }, worker));
  }
}

export interface ReplicaOptions {
  durable: string;
  store: BarWriter;
  now: () => number;
  batch?: number;
  onError?: (err: unknown) => void;
}

export class BarReplica {
  replicated = 0;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: ReplicaOptions,
  ) {}

  async start(): Promise<void> {
    await this.jsm.consumers
      .info(BARS_STREAM, this.opts.durable)
      .catch(() => this.jsm.consumers.add(BARS_STREAM, { durable_name: this.opts.durable, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All }));
    this.loop = this.run();
  }

  /** Messages in the stream this replica has not yet written. */
  async lag(): Promise<number> {
    const ci = await this.jsm.consumers.info(BARS_STREAM, this.opts.durable).catch(() => null);
    return ci ? ci.num_pending + ci.num_ack_pending : 0;
  }

  private messages: { stop(): void } | undefined;

  /**
   * Streams messages as they arrive and writes them in batches: whatever arrived while the previous
   * write committed goes into the next one, so a burst costs few commits and one bar costs one.
   */
  private async run(): Promise<void> {
    const consumer = await this.js.consumers.get(BARS_STREAM, this.opts.durable);
    const msgs = await consumer.consume({ max_messages: this.opts.batch ?? 1000 });
    this.messages = msgs;
    let buffer: Bar[] = [];
    let lastMsg: { ack(): void } | undefined;
    let flushing: Promise<void> = Promise.resolve();
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      const bars = buffer;
      const ackUpTo = lastMsg;
      buffer = [];
      flushing = flushing.then(async () => {
        try {
          if (bars.length) await this.opts.store.putMany(bars);
          this.replicated += bars.length;
          ackUpTo?.ack();
        } catch (err) {
          // Not acknowledged: JetStream delivers the batch again after its ack wait.
          this.opts.onError?.(err);
        }
      });
    };
    for await (const m of msgs) {
      lastMsg = m;
      try {
        const w = m.json<WireBar>();
        buffer.push({ ...w, vwap: w.vwap ?? NaN, receivedAt: this.opts.now() });
      } catch (err) {
        this.opts.onError?.(err);
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    }
    await flushing;
  }

  async stop(): Promise<void> {
    this.messages?.stop();
    await this.loop?.catch(() => undefined);
  }
}
