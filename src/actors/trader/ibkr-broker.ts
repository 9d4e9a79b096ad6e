/**
 * The `ibkr` broker: the Broker contract (broker.ts) over the IBKR order client
 * (src/sources/ibkr/order-client.ts), on the order client's own TWS client id.
 *
 * Design decisions:
 * - Identity. `orderRef` carries the client order id; the broker order id is IB's order id as a
 *   string. Every orderRef this broker has placed, or seen in TWS's open orders or executions, is
 *   remembered with its IB order id. `submit` places an order only when its orderRef is in neither,
 *   and only after this connection has fetched TWS's open orders and today's executions once
 *   ("synced"), so a restarted trader never places an order its previous life already placed.
 * - Acknowledgement. `submit` resolves on TWS's first word about the order (an order status or an
 *   execution), rejects BROKER_REJECTED on 201/200 or an order that goes Cancelled/Inactive before
 *   it ever worked, and BROKER_UNAVAILABLE when the socket drops or nothing comes back in time.
 *   An order sent on a socket that dropped before TWS acknowledged it is "unconfirmed": the sync
 *   after the reconnect forgets it when TWS has neither it open nor an execution of it, so the
 *   reconcile that follows may send it again. That is the one place a resend is allowed, and only
 *   because TWS says it does not have the order.
 * - Commissions. TWS sends the commission report after the execution (or, rarely, before). The
 *   order manager applies a fill once per execId and ignores a later event for the same execId, so
 *   a fill sent with a guessed commission could never be corrected. A fill is therefore held until
 *   its commission arrives and sent once, complete. After `commissionWaitMs` without a report it is
 *   sent with commission 0 and a warning (a later report is logged and counted as `lateCommissions`:
 *   the journal keeps 0 for that fill). `executions()` joins commissions the same way.
 * - Ordering. Events about one order are emitted in the order TWS sent them: a status that comes
 *   after a fill still waiting for its commission waits behind it, so a cancel after a partial fill
 *   never reaches the order manager before that fill.
 * - Reconnect. After every reconnect the broker re-syncs, then calls the `onReconnect` callbacks:
 *   the trader shell runs the order manager's `reconcile()` there, which settles orders that ended,
 *   filled or never arrived while the socket was down.
 * - Positions are derived from today's executions of this client id (the order client has no
 *   reqPositions). Shares held from earlier days or traded by other clients are not in them.
 *
 * Footguns:
 * - IB lists neither cancelled nor rejected orders in reqOpenOrders or reqExecutions. A fresh
 *   process therefore cannot tell "cancelled at IB while we were down" from "never arrived" for an
 *   order its previous life sent but did not journal as submitted; the order manager's reconcile
 *   resends such a pending order. (reqCompletedOrders would close that gap; the order client and
 *   the TWS simulator do not speak it.)
 * - Events are not buffered for late listeners: subscribe with `onEvent` before relying on them;
 *   what was missed comes back through `openOrders()`/`executions()` in reconcile.
 */
import { IbkrConnection } from '../../sources/ibkr/connection.ts';
import type { IbkrConnectionState, IbRequestError } from '../../sources/ibkr/connection.ts';
import { IbkrError } from '../../sources/ibkr/errors.ts';
import { IbkrOrderClient, type IbkrExecution, type IbkrOpenOrder } from '../../sources/ibkr/order-client.ts';
import { parseTwsDate } from '../../sources/ibkr/tws-date.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { OrderRecord, OrderSide, OrderType } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition, BrokerError } from './broker.ts';
import { nextPosition } from './ledger.ts';
import type { TraderLog } from './orders.ts';
import type { TraderConfig } from './protocol.ts';

export type IbkrBrokerConfig = NonNullable<TraderConfig['ibkr']>;

export interface IbkrBrokerOptions {
  /** Wait for the first handshake. Default 30 s. */
  connectTimeoutMs?: number;
  /** Wait for TWS to acknowledge a placed order or a cancel. Default 10 s. */
  ackTimeoutMs?: number;
  /** Hold a fill this long for its commission report. Default 5 s. */
  commissionWaitMs?: number;
  /** Wait for openOrders()/executions() answers. Default 30 s. */
  requestTimeoutMs?: number;
  /** Connection heartbeat (reqCurrentTime) period; 0 turns it off. Default: the connection's. */
  heartbeatMs?: number;
  /** Most finished orders remembered for idempotent submit (besides today's TWS lists). Default 20000. */
  orderHistory?: number;
}

export interface IbkrBrokerStats {
  connection: IbkrConnectionState;
  /** PLACE_ORDER messages this broker sent. */
  placed: number;
  /** submit() calls answered from what TWS already had. */
  duplicates: number;
  fills: number;
  /** Fills sent with commission 0 because no report came in time. */
  fillsWithoutCommission: number;
  /** Commission reports that came after their fill had been sent. */
  lateCommissions: number;
  reconnects: number;
}

/** What the broker knows about one IB order. */
interface KnownOrder {
  orderId: number;
  clientOrderId: string;
  symbol: string;
  side: OrderSide;
  qty: number;
  type: OrderType;
  limitPrice?: number;
  /** Last IB status seen ('' before any). */
  status: string;
  filled: number;
  /** TWS has said something about it (status, open order or execution). */
  confirmed: boolean;
  /** Connection epoch it was placed on (0 when learned from TWS). */
  epoch: number;
  /** An `accepted` event was emitted, or the order was learned from TWS already working. */
  accepted: boolean;
  /** A cancelled or rejected event was emitted (or IB says it is finished). */
  final: boolean;
  rejectReason?: string;
  cancelRequested: boolean;
  lastError?: string;
  /** The first submit's acknowledgement, for a concurrent duplicate submit to share. */
  ack?: Promise<void>;
}

type OrderSignal =
  | { kind: 'status'; status: string }
  | { kind: 'error'; code: number; message: string }
  | { kind: 'execution' }
  | { kind: 'gone'; reason: string };

interface Wait {
  orderId: number;
  decide(s: OrderSignal): 'done' | Error | undefined;
  resolve(): void;
  reject(err: Error): void;
  timer: TimerHandle;
}

const WORKING = new Set(['ApiPending', 'PendingSubmit', 'PreSubmitted', 'Submitted', 'PendingCancel']);
const CANCELLED = new Set(['Cancelled', 'ApiCancelled']);
const FINISHED = new Set(['Cancelled', 'ApiCancelled', 'Filled', 'Inactive']);
/** Order error codes that mean IB will never work the order. */
const REFUSED = new Set([200, 201]);
/** Order error codes that answer a cancel with "nothing to cancel". */
const NOT_CANCELLABLE = new Set([161, 10147, 10148]);

function unavailable(message: string, cause?: unknown): BrokerError {
  return new BrokerError('BROKER_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
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

export class IbkrBroker implements Broker {
  readonly kind = 'ibkr' as const;
  readonly client: IbkrOrderClient;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  private readonly ackTimeoutMs: number;
  private readonly commissionWaitMs: number;
  private readonly orderHistory: number;
  private readonly listeners: Array<(e: BrokerEvent) => void> = [];
  private readonly reconnectListeners: Array<() => void> = [];
  private readonly byId = new Map<number, KnownOrder>();
  private readonly byRef = new Map<string, KnownOrder>();
  private readonly commissions: CommissionBook;
  /** Fills sent with commission 0, so a late report can be reported. */
  private readonly uncommissioned = new Set<string>();
  private readonly waits = new Set<Wait>();
  /** Per clientOrderId: the tail of its event chain while one is waiting (see "Ordering"). */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly detach: Array<() => void> = [];
  private epoch = 0;
  private synced = false;
  private syncing: Promise<void> | undefined;
  private closed = false;
  private readonly counts = { placed: 0, duplicates: 0, fills: 0, fillsWithoutCommission: 0, lateCommissions: 0, reconnects: 0 };

  constructor(client: IbkrOrderClient, ctx: { clock: Clock; log: TraderLog }, opts: IbkrBrokerOptions = {}) {
    this.client = client;
    this.clock = ctx.clock;
    this.log = ctx.log;
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    this.commissionWaitMs = opts.commissionWaitMs ?? 5_000;
    this.orderHistory = opts.orderHistory ?? 20_000;
    this.commissions = new CommissionBook(ctx.clock, this.orderHistory);

    this.listen(client, 'status', (orderId, status, filled) => this.onStatus(orderId, status, filled));
    this.listen(client, 'execution', (x) => this.onExecution(x));
    this.listen(client, 'commission', (r) => this.onCommission(r.execId, r.commission));
    this.listen(client, 'orderError', (orderId, code, message) => this.onOrderError(orderId, code, message));
    this.listen(client.connection, 'requestError', (e: IbRequestError) => {
      // Keeps the text of any error about one of our orders (110 price increment, 10349, ...) as the
      // reason a following Cancelled/Inactive status gives.
      const known = this.byId.get(e.reqId);
      if (known && e.policy.kind !== 'info') known.lastError = `IB ${e.code}: ${e.message}`;
    });
    this.listen(client.connection, 'state', (s: IbkrConnectionState) => {
      if (s === 'disconnected' || s === 'closed') {
        this.synced = false;
        this.signal(undefined, { kind: 'gone', reason: `the TWS connection is ${s}` });
      }
    });
    this.listen(client.connection, 'ready', ({ reconnect }: { reconnect: boolean }) => {
      this.epoch++;
      this.synced = false;
      if (!reconnect) return;
      this.counts.reconnects++;
      this.ensureSynced().then(
        () => {
          if (this.closed) return;
          this.log.info({ reconnects: this.counts.reconnects }, 'reconnected to TWS and re-read its open orders and executions');
          for (const cb of this.reconnectListeners) {
            try {
              cb();
            } catch (err) {
              this.log.error({ err }, 'onReconnect callback failed');
            }
          }
        },
        (err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not re-read TWS orders after the reconnect; the next reconnect tries again'),
      );
    });
  }

  onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }

  /** Called after every reconnect once the broker has re-read TWS: run the order manager's reconcile() there. */
  onReconnect(cb: () => void): void {
    this.reconnectListeners.push(cb);
  }

  async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    this.assertOpen();
    const id = order.clientOrderId;
    if (!this.synced) await this.ensureSynced();
    const known = this.byRef.get(id);
    if (known) {
      this.counts.duplicates++;
      if (known.rejectReason !== undefined) throw new BrokerError('BROKER_REJECTED', `IB rejected order ${id}: ${known.rejectReason}`);
      if (!known.confirmed && known.ack) await known.ack;
      return { brokerOrderId: String(known.orderId) };
    }

    let orderId: number;
    try {
      orderId = this.client.placeOrder({
        clientOrderId: id,
        symbol: order.symbol,
        side: order.side,
        qty: order.qty,
        type: order.type,
        ...(order.type === 'limit' ? { limitPrice: order.limitPrice } : {}),
      });
    } catch (err) {
      // placeOrder throws before anything is written to the socket.
      if (err instanceof IbkrError && err.code === 'IBKR_BAD_INPUT') throw new BrokerError('BROKER_REJECTED', `order ${id} refused before sending: ${err.message}`, { cause: err });
      throw unavailable(`order ${id} was not sent: ${(err as Error).message}`, err);
    }
    this.counts.placed++;
    const placed: KnownOrder = {
      orderId,
      clientOrderId: id,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      type: order.type,
      ...(order.type === 'limit' ? { limitPrice: order.limitPrice } : {}),
      status: '',
      filled: 0,
      confirmed: false,
      epoch: this.epoch,
      accepted: false,
      final: false,
      cancelRequested: false,
    };
    this.remember(placed);
    placed.ack = this.waitFor(orderId, `order ${id} (IB order ${orderId})`, (s) => {
      switch (s.kind) {
        case 'status':
          if (WORKING.has(s.status) || s.status === 'Filled') return 'done';
          return new BrokerError('BROKER_REJECTED', `IB did not accept order ${id}: ${placed.rejectReason ?? placed.lastError ?? s.status}`);
        case 'execution':
          return 'done';
        case 'error':
          if (REFUSED.has(s.code)) return new BrokerError('BROKER_REJECTED', `IB rejected order ${id}: ${s.code} ${s.message}`);
          if (s.code === 103) return unavailable(`IB refused order id ${orderId} of order ${id} as a duplicate id; the order was not placed`);
          return undefined;
        case 'gone':
          return unavailable(`${s.reason} before TWS acknowledged order ${id}; reconciliation decides whether it arrived`);
      }
    });
    await placed.ack;
    return { brokerOrderId: String(orderId) };
  }

  async cancel(clientOrderId: string): Promise<void> {
    this.assertOpen();
    if (!this.synced) await this.ensureSynced();
    const known = this.byRef.get(clientOrderId);
    if (!known || known.final || FINISHED.has(known.status)) return;
    known.cancelRequested = true;
    const done = this.waitFor(known.orderId, `the cancel of order ${clientOrderId}`, (s) => {
      switch (s.kind) {
        case 'status':
          return FINISHED.has(s.status) ? 'done' : undefined;
        case 'error':
          return NOT_CANCELLABLE.has(s.code) || s.code === 202 || REFUSED.has(s.code) ? 'done' : undefined;
        case 'execution':
          return undefined;
        case 'gone':
          return unavailable(`${s.reason}: whether order ${clientOrderId} was cancelled is not known`);
      }
    });
    try {
      this.client.cancelOrder(known.orderId);
    } catch (err) {
      this.signal(known.orderId, { kind: 'gone', reason: `cancel not sent (${(err as Error).message})` });
      await done.catch(() => undefined);
      throw unavailable(`cancel of order ${clientOrderId} was not sent: ${(err as Error).message}`, err);
    }
    await done;
  }

  async openOrders(): Promise<BrokerOrder[]> {
    this.assertOpen();
    const rows = await this.request('open orders', () => this.client.openOrders());
    this.learnOpen(rows);
    const out: BrokerOrder[] = [];
    for (const r of rows) {
      if (!r.clientOrderId || FINISHED.has(r.status)) continue;
      const filled = r.filled ?? 0;
      out.push({
        clientOrderId: r.clientOrderId,
        brokerOrderId: String(r.orderId),
        symbol: r.symbol,
        side: r.side,
        qty: r.qty,
        type: r.type === 'LMT' ? 'limit' : 'market',
        ...(r.type === 'LMT' && r.limitPrice !== undefined ? { limitPrice: r.limitPrice } : {}),
        filledQty: filled,
        state: filled > 0 ? 'partially_filled' : 'submitted',
      });
    }
    return out;
  }

  async executions(sinceMs?: number): Promise<BrokerFill[]> {
    this.assertOpen();
    const rows = await this.request('executions', () => this.client.executions());
    this.learnExecutions(rows);
    // TWS writes execution times to the second.
    const from = sinceMs === undefined ? -Infinity : Math.floor(sinceMs / 1000) * 1000;
    const fills = await Promise.all(rows.map((r) => this.toFill(r, r.commission ?? this.commissions.get(r.execId))));
    return fills.filter((f) => f.time >= from).sort((a, b) => a.time - b.time || (a.execId < b.execId ? -1 : a.execId > b.execId ? 1 : 0));
  }

  async positions(): Promise<Record<string, BrokerPosition>> {
    const out: Record<string, BrokerPosition> = {};
    for (const f of await this.executions()) {
      const next = nextPosition(out[f.symbol], f.side === 'buy' ? f.qty : -f.qty, f.price);
      if (next.qty === 0) delete out[f.symbol];
      else out[f.symbol] = next;
    }
    return out;
  }

  /** Resolves once TWS's open orders and executions were read on the current connection. */
  whenSynced(): Promise<void> {
    this.assertOpen();
    return this.ensureSynced();
  }

  stats(): IbkrBrokerStats {
    return { connection: this.client.connection.state, ...this.counts };
  }

  /** Closes the connection. Fills still waiting for a commission are not emitted: reconcile finds them at TWS. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signal(undefined, { kind: 'gone', reason: 'the IBKR broker was closed' });
    this.commissions.close();
    for (const off of this.detach.splice(0)) off();
    await this.client.close();
  }

  // ---------------------------------------------------------------- internals

  private listen(emitter: { on(e: string, f: (...a: any[]) => void): unknown; off(e: string, f: (...a: any[]) => void): unknown }, event: string, fn: (...a: any[]) => void): void {
    emitter.on(event, fn);
    this.detach.push(() => emitter.off(event, fn));
  }

  private assertOpen(): void {
    if (this.closed) throw unavailable('the IBKR broker is closed');
  }

  /** Runs one order-client request, turning its failures into BROKER_UNAVAILABLE. */
  private async request<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw unavailable(`could not read ${what} from TWS: ${(err as Error).message}`, err);
    }
  }

  /** Reads TWS's open orders and executions once per connection, before anything is placed. */
  private ensureSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    this.syncing ??= this.sync().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async sync(): Promise<void> {
    const epoch = this.epoch;
    const [open, execs] = await Promise.all([
      this.request('open orders', () => this.client.openOrders()),
      this.request('executions', () => this.client.executions()),
    ]);
    this.learnOpen(open);
    this.learnExecutions(execs);
    // Sent on an earlier socket, never acknowledged, and TWS has neither it working nor a fill of
    // it: it did not arrive (or was refused at once). Forget it so reconciliation can send it.
    for (const known of [...this.byId.values()]) {
      if (!known.confirmed && known.epoch < epoch) {
        this.forget(known);
        this.log.warn({ clientOrderId: known.clientOrderId, orderId: known.orderId }, 'an order sent before the connection dropped never reached TWS; it may be sent again');
      }
    }
    if (epoch === this.epoch && this.client.connection.isReady) this.synced = true;
  }

  private remember(known: KnownOrder): void {
    this.byId.set(known.orderId, known);
    this.byRef.set(known.clientOrderId, known);
    if (this.byId.size <= this.orderHistory) return;
    // Oldest finished orders go first; duplicates older than that are stopped by the order journal.
    for (const k of this.byId.values()) {
      if (this.byId.size <= this.orderHistory) break;
      if (k.final || k.status === 'Filled') this.forget(k);
    }
  }

  private forget(known: KnownOrder): void {
    this.byId.delete(known.orderId);
    if (this.byRef.get(known.clientOrderId) === known) this.byRef.delete(known.clientOrderId);
  }

  /** The order with this IB id, or one learned now from an orderRef TWS reported. */
  private learn(orderId: number, ref: string, fields: Pick<KnownOrder, 'symbol' | 'side'> & Partial<KnownOrder>): KnownOrder | undefined {
    let known = this.byId.get(orderId);
    if (!known && ref) {
      const sameRef = this.byRef.get(ref);
      // An unconfirmed order of ours that TWS now reports under its id.
      if (sameRef && sameRef.orderId === orderId) known = sameRef;
    }
    if (!known) {
      if (!ref) return undefined;
      known = {
        orderId,
        clientOrderId: ref,
        qty: 0,
        type: 'market',
        status: '',
        filled: 0,
        epoch: 0,
        accepted: true,
        final: false,
        cancelRequested: false,
        ...fields,
        confirmed: true,
      };
      this.remember(known);
    }
    known.confirmed = true;
    return known;
  }

  private learnOpen(rows: readonly IbkrOpenOrder[]): void {
    for (const r of rows) {
      const known = this.learn(r.orderId, r.clientOrderId, {
        symbol: r.symbol,
        side: r.side,
        qty: r.qty,
        type: r.type === 'LMT' ? 'limit' : 'market',
        ...(r.limitPrice !== undefined ? { limitPrice: r.limitPrice } : {}),
      });
      if (!known) continue;
      if (r.status) known.status = r.status;
      if (r.filled !== undefined) known.filled = Math.max(known.filled, r.filled);
      if (WORKING.has(r.status)) known.accepted = true;
    }
  }

  private learnExecutions(rows: readonly IbkrExecution[]): void {
    for (const r of rows) {
      this.learn(r.orderId, r.orderRef, { symbol: r.symbol, side: r.side });
      if (r.commission !== undefined) this.commissions.set(r.execId, r.commission);
    }
  }

  private onStatus(orderId: number, status: string, filled: number): void {
    const known = this.byId.get(orderId);
    if (!known) return; // not ours, or learned later from openOrders()/executions() in reconcile
    known.status = status;
    known.filled = Math.max(known.filled, filled);
    known.confirmed = true;
    const id = known.clientOrderId;
    const now = this.clock.now();
    if ((WORKING.has(status) || status === 'Filled') && !known.accepted && !known.final) {
      known.accepted = true;
      this.emitInOrder(id, { type: 'accepted', clientOrderId: id, brokerOrderId: String(orderId), time: now });
    } else if ((CANCELLED.has(status) || status === 'Inactive') && !known.final) {
      known.final = true;
      if (status === 'Inactive' || !known.accepted) {
        // It never worked: IB refused it.
        known.rejectReason = known.lastError ?? `IB set the order ${status}`;
        this.emitInOrder(id, { type: 'rejected', clientOrderId: id, time: now, reason: known.rejectReason });
      } else {
        const reason = known.cancelRequested ? 'cancel requested' : (known.lastError ?? 'cancelled at IB');
        this.emitInOrder(id, { type: 'cancelled', clientOrderId: id, time: now, reason });
      }
    }
    this.signal(orderId, { kind: 'status', status });
  }

  private onOrderError(orderId: number, code: number, message: string): void {
    const known = this.byId.get(orderId);
    if (known) {
      if (code !== 202) known.lastError = `IB ${code}: ${message}`;
      if (REFUSED.has(code) && !known.final) {
        known.final = true;
        known.rejectReason = `IB ${code}: ${message}`;
        this.emitInOrder(known.clientOrderId, { type: 'rejected', clientOrderId: known.clientOrderId, time: this.clock.now(), reason: known.rejectReason });
      } else if (code === 103 && !known.confirmed) {
        // TWS did not take this order id, so the order was not placed.
        this.forget(known);
      }
    }
    this.signal(orderId, { kind: 'error', code, message });
  }

  private onExecution(x: { execId: string; orderId: number; orderRef: string; symbol: string; side: 'buy' | 'sell'; qty: number; price: number; time: string }): void {
    const known = this.learn(x.orderId, x.orderRef, { symbol: x.symbol, side: x.side });
    this.signal(x.orderId, { kind: 'execution' });
    if (!known) {
      this.log.warn({ execId: x.execId, orderId: x.orderId }, 'execution of an order with no orderRef: not one of ours');
      return;
    }
    const id = known.clientOrderId;
    if (!known.accepted && !known.final) {
      known.accepted = true;
      this.emitInOrder(id, { type: 'accepted', clientOrderId: id, brokerOrderId: String(x.orderId), time: this.clock.now() });
    }
    const row: IbkrExecution = { ...x, orderRef: id };
    this.emitInOrder(
      id,
      this.toFill(row, this.commissions.get(x.execId)).then((fill): BrokerEvent => {
        this.counts.fills++;
        return { type: 'fill', clientOrderId: id, fill };
      }),
    );
  }

  private onCommission(execId: string, commission: number): void {
    this.commissions.set(execId, commission);
    if (this.uncommissioned.delete(execId)) {
      this.counts.lateCommissions++;
      this.log.warn({ execId, commission }, 'a commission report came after its fill was recorded with commission 0; the journal keeps 0 for this fill');
    }
  }

  /** The fill of `r`, waiting up to commissionWaitMs for its commission when it is not known yet. */
  private async toFill(r: IbkrExecution, commission: number | undefined): Promise<BrokerFill> {
    let c = commission ?? (await this.commissions.wait(r.execId, this.commissionWaitMs));
    if (c === undefined) {
      c = 0;
      if (!this.closed && !this.uncommissioned.has(r.execId)) {
        this.uncommissioned.add(r.execId);
        this.counts.fillsWithoutCommission++;
        this.log.warn({ execId: r.execId, clientOrderId: r.orderRef }, `no commission report within ${this.commissionWaitMs} ms; the fill is recorded with commission 0`);
      }
    }
    let time: number;
    try {
      time = parseTwsDate(r.time);
    } catch (err) {
      time = this.clock.now();
      this.log.warn({ execId: r.execId, time: r.time, err: (err as Error).message }, 'execution time unreadable; using the clock');
    }
    return {
      execId: r.execId,
      qty: r.qty,
      price: r.price,
      time,
      commission: c,
      clientOrderId: r.orderRef || (this.byId.get(r.orderId)?.clientOrderId ?? ''),
      brokerOrderId: String(r.orderId),
      symbol: r.symbol,
      side: r.side,
    };
  }

  /** Emits events of one order in arrival order, a pending one (a fill awaiting its commission) holding up the rest. */
  private emitInOrder(id: string, event: BrokerEvent | Promise<BrokerEvent>): void {
    const prev = this.chains.get(id);
    if (!prev && !(event instanceof Promise)) {
      this.emit(event);
      return;
    }
    const next = (prev ?? Promise.resolve())
      .then(() => event)
      .then(
        (e) => this.emit(e),
        (err: unknown) => this.log.error({ clientOrderId: id, err }, 'a broker event could not be built'),
      );
    this.chains.set(id, next);
    void next.finally(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
  }

  private emit(e: BrokerEvent): void {
    if (this.closed) return;
    for (const cb of this.listeners) {
      try {
        cb(e);
      } catch (err) {
        this.log.error({ event: e.type, clientOrderId: e.clientOrderId, err }, 'broker event listener failed');
      }
    }
  }

  private waitFor(orderId: number, what: string, decide: Wait['decide']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wait: Wait = {
        orderId,
        decide,
        resolve,
        reject,
        timer: this.clock.setTimeout(() => this.settle(wait, unavailable(`no answer from TWS about ${what} within ${this.ackTimeoutMs} ms`)), this.ackTimeoutMs),
      };
      this.waits.add(wait);
    });
  }

  /** Hands `s` to the waits on `orderId` (every wait when undefined). */
  private signal(orderId: number | undefined, s: OrderSignal): void {
    for (const w of [...this.waits]) {
      if (orderId !== undefined && w.orderId !== orderId) continue;
      const outcome = w.decide(s);
      if (outcome !== undefined) this.settle(w, outcome);
    }
  }

  private settle(w: Wait, outcome: 'done' | Error): void {
    if (!this.waits.delete(w)) return;
    w.timer.cancel();
    if (outcome === 'done') w.resolve();
    else w.reject(outcome);
  }
}

/**
 * Connects to TWS on `cfg.clientId` (the order client id), waits for the handshake and reads TWS's
 * open orders and executions, so the first submit already knows what a previous run placed.
 * Rejects with BROKER_UNAVAILABLE when TWS cannot be reached within `connectTimeoutMs`.
 */
export async function connectIbkrBroker(cfg: IbkrBrokerConfig, ctx: { clock: Clock; log: TraderLog }, opts: IbkrBrokerOptions = {}): Promise<IbkrBroker> {
  const connection = new IbkrConnection({
    host: cfg.host,
    port: cfg.port,
    clientId: cfg.clientId,
    clock: ctx.clock,
    backoff: { initialMs: cfg.reconnectInitialMs, maxMs: cfg.reconnectMaxMs },
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
  });
  const client = new IbkrOrderClient({ connection, clock: ctx.clock, ownsConnection: true, ...(opts.requestTimeoutMs !== undefined ? { requestTimeoutMs: opts.requestTimeoutMs } : {}) });
  const broker = new IbkrBroker(client, ctx, opts);
  try {
    await client.start(opts.connectTimeoutMs ?? 30_000);
    await broker.whenSynced();
  } catch (err) {
    await broker.close();
    if (err instanceof BrokerError) throw err;
    throw unavailable(`cannot reach TWS at ${cfg.host}:${cfg.port} with client id ${cfg.clientId}: ${(err as Error).message}`, err);
  }
  ctx.log.info({ host: cfg.host, port: cfg.port, clientId: cfg.clientId }, 'IBKR broker connected');
  return broker;
}
