/**
 * Bars across the cluster. The owner of a symbol publishes every bar it writes to
 * `bars.<bar_size>.<symbol>` in BARKEEP_BARS; every node (the owner included) keeps its LMDB cache
 * as a replica fed by its own durable consumer, so `/bars` and every arbiter see every symbol.
 *
 * A bar's message id is made of its source, symbol, size, start and content, so a bar published
 * twice (a retry, two owners during a hand-over) is stored once by JetStream, while a corrected bar
 * (same key, new values) is a new message and replaces the old one in every replica by the usual
 * cross-source rule of the bar store.
 * The replica makes a batch visible in its cache at the commit and acknowledges it to the stream only
 * once it is on disk (BarReplica.run): a node killed in the middle gets the unflushed bars again,
 * and writing a bar twice changes nothing.
 */
import { hash } from 'node:crypto';
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { Bar } from '../market/bar.ts';
import type { BarWriter, WriteResult } from '../storage/types.ts';
import { BarValidationError, validateBar } from '../storage/bar-validation.ts';
import { BARS_STREAM, barSubject } from './subjects.ts';

/** A replica whose store refused a batch tries it again after this long. */
const RETRY_MS = 1000;

/**
 * Batches up to this many bars are written on the replica's own thread (`putManySync`: readable at
 * the commit, on disk when it returns, no hand-over to lmdb-js's writer thread and back); bigger ones
 * (a burst) through the writer thread, so that the thread never waits on one long transaction and
 * its fsync while it has leases to renew.
 */
export const SYNC_BATCH_MAX = 64;

/**
 * Replicas consuming in this thread (a module is per thread). With more than one (several nodes in
 * one process: tests, the benchmark's one-thread layout), none writes on the thread: each would
 * hold the others' bars behind its fsync (measured: three replicas on one thread, a bar readable in
 * all three p50 1.68 ms on the thread against 1.11 ms through the writer threads, same run).
 */
let replicasInThread = 0;

function isValid(b: Bar): boolean {
  try {
    validateBar(b);
    return true;
  } catch {
    return false;
  }
}

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

export function barMsgId(b: Bar, body = JSON.stringify(toWire(b))): string {
  // One-shot hash: no Hash object per bar.
  return `${b.source}|${b.symbol}|${b.barSize}|${b.start}|${hash('sha1', body).slice(0, 16)}`;
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
        const body = JSON.stringify(toWire(b));
        const ack = await this.js.publish(barSubject(b.barSize, b.symbol), body, { msgID: barMsgId(b, body) });
        if (ack.duplicate) this.duplicates++;
        else this.published++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, bars.length) }, worker));
  }
}

/**
 * Where a replica writes. `putManyCommitted` (BarStore has it) makes bars visible at the commit and
 * tells when they are on disk; a store without it is written with `putMany`, visible and acknowledged
 * once durable. `putManySync` (BarStore has it) writes a small batch on the calling thread, readable
 * at its commit and on disk when it returns.
 */
export interface ReplicaStore extends BarWriter {
  putManyCommitted?(bars: readonly Bar[]): Promise<{ result: WriteResult; flushed: Promise<void> }>;
  putManySync?(bars: readonly Bar[]): WriteResult;
}

export interface ReplicaOptions {
  durable: string;
  store: ReplicaStore;
  now: () => number;
  batch?: number;
  onError?: (err: unknown) => void;
}

export class BarReplica {
  /** Bars written (committed: visible in the cache). */
  replicated = 0;
  /** Bars on disk and acknowledged to the stream. */
  acknowledged = 0;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly opts: ReplicaOptions,
  ) {}

  /**
   * Creates the durable consumer, or picks it up where it was left. Bars delivered to a previous run
   * but not acknowledged (not yet on disk when it died) would come again only after the consumer's
   * ack wait (30 s): the consumer is made again to start right after its acknowledgement floor,
   * so they come at once.
   */
  async start(): Promise<void> {
    const durable = this.opts.durable;
    const info = await this.jsm.consumers.info(BARS_STREAM, durable).catch(() => null);
    if (!info) {
      await this.jsm.consumers.add(BARS_STREAM, { durable_name: durable, ack_policy: AckPolicy.All, deliver_policy: DeliverPolicy.All });
    } else if (info.num_ack_pending > 0) {
      await this.jsm.consumers.delete(BARS_STREAM, durable);
      await this.jsm.consumers.add(BARS_STREAM, {
        durable_name: durable,
        ack_policy: AckPolicy.All,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: info.ack_floor.stream_seq + 1,
      });
    }
    replicasInThread++;
    this.loop = this.run().finally(() => replicasInThread--);
  }

  /** Messages in the stream this replica has not yet written. */
  async lag(): Promise<number> {
    const ci = await this.jsm.consumers.info(BARS_STREAM, this.opts.durable).catch(() => null);
    return ci ? ci.num_pending + ci.num_ack_pending : 0;
  }

  private messages: { stop(): void } | undefined;
  private stopping = false;
  private dropped = false;
  private unflushed = false;

  /** Commits one batch; resolves at the commit with the promise of its flush (wrapped: a returned promise would be waited for). */
  private async commit(bars: Bar[]): Promise<{ flushed: Promise<void> }> {
    const store = this.opts.store;
    if (store.putManyCommitted) return { flushed: (await store.putManyCommitted(bars)).flushed };
    await store.putMany(bars);
    return { flushed: Promise.resolve() };
  }

  /**
   * Streams messages as they arrive and writes them in batches: the messages of one socket read go
   * into one transaction, and while a batch is being written whatever arrives waits and goes into
   * the next one (one write at a time), so a burst costs few commits and one bar costs one.
   *
   * Readable at the commit, acknowledged after the flush: a batch is in the cache (every reader sees
   * it) as soon as its transaction commits, and its fsync follows. A small batch (up to
   * SYNC_BATCH_MAX bars: one bar or a few, the latency case) of the only replica in this thread
   * (a node's process has one) is committed on this thread by
   * `putManySync`, which returns after the fsync: no promise and no thread hand-over between the
   * message and the cache; a bigger one goes through lmdb-js's writer thread, which reports the
   * commit after its fsync, then takes the next batch. The stream is acknowledged
   * (AckPolicy.All: up to a message) only once the batch holding that message is on disk, and in
   * order, so the acknowledgement never covers a bar that is not: a replica killed (or powered off)
   * before the flush has its unflushed bars delivered again, and writing a bar twice changes nothing.
   */
  private async run(): Promise<void> {
    const consumer = await this.js.consumers.get(BARS_STREAM, this.opts.durable);
    const msgs = await consumer.consume({ max_messages: this.opts.batch ?? 1000 });
    this.messages = msgs;
    const store = this.opts.store;
    let buffer: Bar[] = [];
    let lastMsg: { ack(): void } | undefined;
    let committing: Promise<void> = Promise.resolve();
    let acking: Promise<void> = Promise.resolve();
    /** Acknowledgements queued behind a flush not yet done (the chain is idle at 0). */
    let acksWaiting = 0;
    let scheduled = false;
    let inFlight = false;
    const ack = (ackUpTo: { ack(): void } | undefined, n: number) => {
      if (this.dropped || this.unflushed) return;
      try {
        ackUpTo?.ack();
      } catch (err) {
        // The connection is gone: the batch comes again (and is written again, harmlessly).
        this.opts.onError?.(err);
        return;
      }
      this.acknowledged += n;
    };
    /**
     * A small batch written on this thread, when nothing is being written or waits for its flush:
     * readable at the commit, on disk (and acknowledged) when putManySync returns; no promise between
     * the message and the cache. False when the store refused it: the caller takes the slow path.
     */
    const writeNow = (bars: Bar[], ackUpTo: { ack(): void } | undefined): boolean => {
      let batch = bars;
      for (;;) {
        try {
          if (batch.length) store.putManySync!(batch);
          break;
        } catch (err) {
          this.opts.onError?.(err);
          // An invalid bar is skipped, as on the slow path; a store that fails is retried there.
          const valid = err instanceof BarValidationError ? batch.filter(isValid) : batch;
          if (valid.length === batch.length) return false;
          batch = valid;
        }
      }
      this.replicated += batch.length;
      ack(ackUpTo, batch.length);
      return true;
    };
    const flush = () => {
      scheduled = false;
      // One commit at a time: what arrives meanwhile waits in the buffer and goes in the next one.
      if (inFlight || (buffer.length === 0 && lastMsg === undefined)) return;
      const bars = buffer;
      const ackUpTo = lastMsg;
      buffer = [];
      lastMsg = undefined;
      // Acknowledgements go in batch order: with one still waiting for a flush, this batch's waits too.
      if (store.putManySync && replicasInThread === 1 && bars.length <= SYNC_BATCH_MAX && acksWaiting === 0 && writeNow(bars, ackUpTo)) return;
      inFlight = true;
      const committed = committing.then(async () => {
        // A bar that fails validation is logged and skipped (as a malformed message is): it would
        // fail every retry. What fails otherwise is the store itself (disk full, ...): the batch is
        // tried again, and nothing after it is acknowledged meanwhile (an acknowledgement covers
        // every earlier message). Stopped before it succeeds, the replica gets the batch again.
        let batch = bars;
        for (;;) {
          try {
            const { flushed } = batch.length ? await this.commit(batch) : { flushed: Promise.resolve() };
            this.replicated += batch.length;
            return { flushed, ok: true, n: batch.length };
          } catch (err) {
            this.opts.onError?.(err);
            if (err instanceof BarValidationError) {
              const valid = batch.filter(isValid);
              if (valid.length < batch.length) {
                batch = valid;
                continue;
              }
            }
            if (this.stopping) return { flushed: Promise.resolve(), ok: false, n: 0 };
            await new Promise((r) => setTimeout(r, RETRY_MS));
          }
        }
      });
      committing = committed.then(() => {
        inFlight = false;
        flush();
      });
      // Acknowledgements in batch order, each once its batch (and every earlier one) is on disk.
      acksWaiting++;
      acking = acking.then(async () => {
        try {
          const { flushed, ok, n } = await committed;
          try {
            await flushed;
          } catch (err) {
            // Not known to be on disk: nothing from here on is acknowledged (a later acknowledgement
            // would cover this batch); the stream delivers it all again after the ack wait.
            this.opts.onError?.(err);
            this.unflushed = true;
            return;
          }
          if (!ok) this.unflushed = true;
          ack(ackUpTo, n);
        } finally {
          acksWaiting--;
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
        // After the messages of this read (they arrive in microtasks): one batch per read, and the
        // store's own write scheduling still runs in this turn.
        scheduled = true;
        process.nextTick(flush);
      }
    }
    // Stopped: what was delivered is written (not acknowledged: it comes again next time).
    flush();
    for (let last; last !== committing; ) {
      last = committing;
      await committing;
    }
    // A clean stop acknowledges what is on disk; a crash waits for nothing.
    if (!this.dropped) await acking;
  }

  /**
   * Stops consuming. What was delivered is committed; `crash` (drills) also drops the
   * acknowledgements still waiting for their flush, as a killed process would.
   */
  async stop(crash = false): Promise<void> {
    this.stopping = true;
    this.dropped = crash;
    this.messages?.stop();
    await this.loop?.catch(() => undefined);
  }
}
