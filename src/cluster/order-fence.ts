/**
 * The order fence: in cluster mode an order event is appended to `orders.<symbol>` in the stream
 * BARKEEP_ORDERS before the broker sees the order, with the subject's last sequence this node knows
 * as an expectation (`Nats-Expected-Last-Subject-Sequence`).
 *
 * Why it fences: a node that takes a symbol over first appends a `lease` event, which moves the
 * subject's sequence on. A stale owner (frozen, partitioned, lease lost) still expects the old
 * sequence, so JetStream refuses its append, and because the append comes before the broker call,
 * it never sends the order. Each refusal is counted.
 * A takeover also reads the subject's history back, so the new owner knows every order the old one
 * made before it reconciles with the broker.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { FencedError } from './errors.ts';
import { ORDERS_STREAM, orderSubject } from './subjects.ts';

export { FencedError } from './errors.ts';

export interface OrderEvent {
  /** `lease` (a takeover marker) or an order event of the order manager (`placed`, `fill`, ...). */
  type: string;
  node_id: string;
  client_order_id?: string;
  [k: string]: unknown;
}

const WRONG_LAST_SEQUENCE = 10071;

export class OrderFence {
  /** Symbol → the subject's last sequence as this node knows it. */
  private known = new Map<string, number>();
  fenced = 0;
  appended = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly nodeId: string,
  ) {}

  /** Takes a symbol over: reads its order history and appends our lease marker. */
  async takeOver(symbol: string): Promise<OrderEvent[]> {
    for (let attempt = 0; ; attempt++) {
      const history = await this.history(symbol);
      const last = history.length ? history[history.length - 1].seq : 0;
      try {
        const ack = await this.js.publish(orderSubject(symbol), JSON.stringify({ type: 'lease', node_id: this.nodeId }), {
          expect: { lastSubjectSequence: last },
        });
        this.known.set(symbol, ack.seq);
        return history.map((h) => h.event);
      } catch (err) {
        if (attempt >= 5 || !isWrongLastSequence(err)) throw err;
      }
    }
  }

  /**
   * Takes a symbol over without reading its history back: appends our lease marker after the
   * subject's last message (one read, one append). The trader reads the history when it adopts.
   */
  async mark(symbol: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const last = await this.jsm.streams.getMessage(ORDERS_STREAM, { last_by_subj: orderSubject(symbol) }).catch((err) => {
        if (isNoMessage(err)) return null;
        throw err;
      });
      try {
        const ack = await this.js.publish(orderSubject(symbol), JSON.stringify({ type: 'lease', node_id: this.nodeId }), {
          expect: { lastSubjectSequence: last?.seq ?? 0 },
        });
        this.known.set(symbol, ack.seq);
        return;
      } catch (err) {
        if (attempt >= 5 || !isWrongLastSequence(err)) throw err;
      }
    }
  }

  /**
   * Starts appending for a symbol whose takeover another part of this node already marked (the
   * trading loop's fence adopts what the node's ownership took over): reads the subject's last
   * sequence. A stale owner cannot have appended since the marker, so that is where we stand.
   */
  async adopt(symbol: string): Promise<void> {
    const last = await this.jsm.streams.getMessage(ORDERS_STREAM, { last_by_subj: orderSubject(symbol) }).catch(() => null);
    this.known.set(symbol, last?.seq ?? 0);
  }

  /** Forgets a symbol this node lost; a later append for it is refused locally as well. */
  release(symbol: string): void {
    this.known.delete(symbol);
  }

  /** Appends an order event; rejects with FencedError when another node has taken the symbol. */
  async append(symbol: string, event: Omit<OrderEvent, 'node_id'>): Promise<number> {
    const last = this.known.get(symbol);
    if (last === undefined) {
      this.fenced++;
      throw new FencedError(symbol);
    }
    try {
      const ack = await this.js.publish(orderSubject(symbol), JSON.stringify({ ...event, node_id: this.nodeId }), {
        expect: { lastSubjectSequence: last },
      });
      this.known.set(symbol, ack.seq);
      this.appended++;
      return ack.seq;
    } catch (err) {
      if (isWrongLastSequence(err)) {
        this.known.delete(symbol);
        this.fenced++;
        throw new FencedError(symbol, { cause: err });
      }
      throw err;
    }
  }

  /** Every event on `orders.<symbol>`, oldest first, with its stream sequence. */
  async history(symbol: string): Promise<{ seq: number; event: OrderEvent }[]> {
    const subject = orderSubject(symbol);
    const out: { seq: number; event: OrderEvent }[] = [];
    const info = await this.jsm.streams.info(ORDERS_STREAM, { subjects_filter: subject }).catch(() => null);
    const count = info?.state.subjects?.[subject] ?? 0;
    if (count === 0) return out;
    const ci = await this.jsm.consumers.add(ORDERS_STREAM, {
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 30_000_000_000,
    });
    try {
      const consumer = await this.js.consumers.get(ORDERS_STREAM, ci.name);
      // A fetch can come back empty before the server answered (its 2 s expired on a loaded
      // machine) while the messages are there: a short history would hide orders from a takeover,
      // so an empty fetch is tried again a few times before the history is taken as it is.
      for (let empty = 0; out.length < count && empty < 5; ) {
        const msgs = await consumer.fetch({ max_messages: Math.min(500, count - out.length), expires: 2000 });
        let got = 0;
        for await (const m of msgs) {
          got++;
          out.push({ seq: m.seq, event: m.json<OrderEvent>() });
        }
        empty = got === 0 ? empty + 1 : 0;
      }
    } finally {
      await this.jsm.consumers.delete(ORDERS_STREAM, ci.name).catch(() => undefined);
    }
    return out;
  }
}

function isNoMessage(err: unknown): boolean {
  const e = err as { apiError?: () => { err_code?: number; code?: number }; message?: string };
  const api = typeof e?.apiError === 'function' ? e.apiError() : undefined;
  return api?.err_code === 10037 || api?.code === 404 || /no message found/i.test(e?.message ?? '');
}

export function isWrongLastSequence(err: unknown): boolean {
  const e = err as { code?: unknown; apiError?: () => { err_code?: number }; message?: string };
  if (typeof e?.apiError === 'function' && e.apiError()?.err_code === WRONG_LAST_SEQUENCE) return true;
  return typeof e?.message === 'string' && /wrong last sequence/i.test(e.message);
}
