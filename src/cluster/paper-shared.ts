/**
 * The paper broker of a cluster: one account for every node, as a real broker is.
 *
 * The paper broker (src/actors/trader/paper-broker.ts) keeps its whole state (cash, positions,
 * working orders, recent fills, the ids it has seen) under one checkpoint key and writes it after
 * every change, before it announces the change. Here that checkpoint is a key of the JetStream KV
 * bucket `barkeep_paper` (the key is the account, `paper-broker` by default), written with a
 * compare-and-set on the revision this node last read:
 * - Every operation first reads the key; when another node has written since, this node's broker
 *   is rebuilt from the stored state, so it works on the account as it is.
 * - A write that loses the race (another node wrote in between) is refused by JetStream; the
 *   operation is run again on the fresh state. Nothing was announced: the paper broker announces
 *   only after its write resolved.
 * - A write that resolved is on JetStream's disk (file storage, acknowledged), so the crash-safety
 *   rule holds for the cluster: an event a trader saw is durable and every node reads it back.
 * One node trades a symbol at a time (ownership), so the races are between different symbols'
 * orders on the one account (cash), never two nodes working one order.
 *
 * Footgun: bars reach the broker only on the node that trades their symbol, so a `day` order ends
 * at the first bar of its own symbol after the close (one node alone ends it at any symbol's bar).
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Bar } from '../market/bar.ts';
import type { CheckpointStore, OrderRecord } from '../storage/types.ts';
import { BrokerError, type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition } from '../actors/trader/broker.ts';
import { PaperBroker, type PaperBrokerOptions } from '../actors/trader/paper-broker.ts';
import { isWrongLastSequence } from './order-fence.ts';
import { PAPER_BUCKET } from './subjects.ts';

/** Another node wrote the account between this node's read and its write. */
class StateConflict extends Error {}

/** The paper broker's checkpoint store: one KV key, written at the revision it was read at. */
class KvStateStore implements CheckpointStore {
  constructor(
    private readonly kv: KV,
    private readonly key: string,
    private value: unknown,
    /** The revision `value` was read at; 0 when the key did not exist. */
    public rev: number,
  ) {}

  get<T>(key: string): T | undefined {
    return key === this.key ? (this.value as T | undefined) : undefined;
  }

  async put<T>(key: string, value: T): Promise<void> {
    if (key !== this.key) throw new Error(`shared paper broker: unexpected checkpoint key ${key}`);
    const data = JSON.stringify(value);
    const at = this.rev;
    // Whatever happens next, this copy no longer matches a stored revision until the write resolves.
    this.rev = -1;
    let rev: number;
    try {
      rev = at === 0 ? await this.kv.create(key, data) : await this.kv.update(key, data, at);
    } catch (err) {
      if (isWrongLastSequence(err) || /key exists/i.test((err as Error).message)) throw new StateConflict();
      throw new BrokerError('BROKER_UNAVAILABLE', `paper broker state not written to JetStream: ${(err as Error).message}`, { cause: err });
    }
    this.value = value;
    this.rev = rev;
  }

  async delete(): Promise<void> {
    throw new Error('shared paper broker: the account is never deleted by the broker');
  }
}

export interface SharedPaperOptions extends Omit<PaperBrokerOptions, 'checkpoints'> {
  /** Attempts of one operation that keeps losing the race; default 50. */
  maxAttempts?: number;
}

export class SharedPaperBroker implements Broker {
  readonly kind = 'paper' as const;
  private inner!: PaperBroker;
  private store!: KvStateStore;
  private readonly key: string;
  private readonly listeners: Array<(e: BrokerEvent) => void> = [];
  private queue: Promise<unknown> = Promise.resolve();
  /** Writes that lost the race to another node and were run again. */
  conflicts = 0;
  /** Times this node's copy was rebuilt from another node's write. */
  reloads = 0;

  private constructor(
    private readonly kv: KV,
    private readonly opts: SharedPaperOptions,
  ) {
    this.key = opts.key ?? 'paper-broker';
  }

  static async open(js: JetStreamClient, opts: SharedPaperOptions): Promise<SharedPaperBroker> {
    const kv = await new Kvm(js).create(PAPER_BUCKET, { history: 1 });
    const b = new SharedPaperBroker(kv, opts);
    await b.sync();
    return b;
  }

  /** Reads the account; rebuilds this node's copy when another node (or a failed write) changed it. */
  private async sync(): Promise<void> {
    const e = await this.kv.get(this.key);
    const rev = e && e.operation === 'PUT' ? e.revision : 0;
    if (this.store && rev === this.store.rev) return;
    if (this.store) this.reloads++;
    this.store = new KvStateStore(this.kv, this.key, rev ? e!.json() : undefined, rev);
    const { maxAttempts: _m, ...paper } = this.opts;
    this.inner = new PaperBroker({ ...paper, key: this.key, checkpoints: this.store });
    this.inner.onEvent((ev) => {
      for (const cb of this.listeners) cb(ev);
    });
  }

  /** Runs `fn` on the current account, one operation at a time, again on a fresh copy after a lost race. */
  private run<T>(fn: (b: PaperBroker) => Promise<T>): Promise<T> {
    const p = this.queue.then(async () => {
      const max = this.opts.maxAttempts ?? 50;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.sync();
        } catch (err) {
          throw new BrokerError('BROKER_UNAVAILABLE', `paper broker state not readable from JetStream: ${(err as Error).message}`, { cause: err });
        }
        try {
          return await fn(this.inner);
        } catch (err) {
          if (!(err instanceof StateConflict)) throw err;
          this.conflicts++;
          if (attempt >= max) throw new BrokerError('BROKER_UNAVAILABLE', `paper broker state: ${attempt} writes lost to other nodes in a row`);
        }
      }
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }

  submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    return this.run((b) => b.submit(order));
  }

  submitGroup(orders: readonly OrderRecord[]): Promise<Array<{ clientOrderId: string; brokerOrderId: string }>> {
    return this.run((b) => b.submitGroup(orders));
  }

  cancel(clientOrderId: string): Promise<void> {
    return this.run((b) => b.cancel(clientOrderId));
  }

  openOrders(): Promise<BrokerOrder[]> {
    return this.run((b) => b.openOrders());
  }

  executions(sinceMs?: number): Promise<BrokerFill[]> {
    return this.run((b) => b.executions(sinceMs));
  }

  positions(): Promise<Record<string, BrokerPosition>> {
    return this.run((b) => b.positions());
  }

  /** The cash of this node's latest copy of the account. */
  cash(): number {
    return this.inner.cash();
  }

  async onBar(bar: Bar): Promise<void> {
    // Only the node trading a symbol places its orders, so its own copy knows whether any of this
    // symbol's orders work: most bars cost no read of the account.
    const open = await this.inner.openOrders();
    if (!open.some((o) => o.symbol === bar.symbol)) return;
    await this.run((b) => b.onBar(bar));
  }
}
