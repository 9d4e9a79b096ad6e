/**
 * The `ibkr` broker: the Broker contract (broker.ts) over the IBKR order client
 * (src/sources/ibkr/order-client.ts), on the order client's own TWS client id. TWS's dialect
 * (status strings, error codes, dates, the commission join) is read in src/sources/ibkr
 * (order-status.ts, commission-join.ts); this file keeps order identity and idempotence.
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
import { CommissionJoin } from '../../sources/ibkr/commission-join.ts';
import { IbkrOrderClient } from '../../sources/ibkr/order-client.ts';
import { isFinished } from '../../sources/ibkr/order-status.ts';
import type { Clock } from '../../market/clock.ts';
import type { OrderRecord } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition, BrokerError } from './broker.ts';
import { IbkrEventMapper } from './ibkr-event-mapper.ts';
import { KnownOrders, type KnownOrder } from './ibkr-known-orders.ts';
import { openOrderView, type PlacementLink, placeOrder } from './ibkr-placement.ts';
import { OrderWaits, unavailable } from './ibkr-order-waits.ts';
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
  /** Outgoing messages per second (the client library's pacing queue). Default: the connection's (40). */
  maxRequestsPerSecond?: number;
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

export class IbkrBroker implements Broker {
  readonly kind = 'ibkr' as const;
  readonly client: IbkrOrderClient;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  private readonly reconnectListeners: Array<() => void> = [];
  private readonly orders: KnownOrders;
  private readonly commissions: CommissionJoin;
  private readonly waits: OrderWaits;
  private readonly events: IbkrEventMapper;
  private readonly detach: Array<() => void> = [];
  private epoch = 0;
  private synced = false;
  private syncing: Promise<void> | undefined;
  private closed = false;
  private readonly counts = { placed: 0, duplicates: 0, reconnects: 0 };

  constructor(client: IbkrOrderClient, ctx: { clock: Clock; log: TraderLog }, opts: IbkrBrokerOptions = {}) {
    this.client = client;
    this.clock = ctx.clock;
    this.log = ctx.log;
    const orderHistory = opts.orderHistory ?? 20_000;
    this.orders = new KnownOrders(orderHistory);
    this.commissions = new CommissionJoin(ctx.clock, ctx.log, opts.commissionWaitMs ?? 5_000, orderHistory);
    this.waits = new OrderWaits(ctx.clock, opts.ackTimeoutMs ?? 10_000);
    const events = new IbkrEventMapper(this.orders, this.commissions, this.waits, ctx.clock, ctx.log);
    this.events = events;

    this.listen(client, 'status', (orderId, status, filled) => events.onStatus(orderId, status, filled));
    this.listen(client, 'execution', (x) => events.onExecution(x));
    this.listen(client, 'commission', (r) => this.commissions.report(r.execId, r.commission));
    this.listen(client, 'orderError', (orderId, code, message) => events.onOrderError(orderId, code, message));
    this.listen(client.connection, 'requestError', (e: IbRequestError) => events.onRequestError(e));
    this.listen(client.connection, 'state', (s: IbkrConnectionState) => {
      if (s === 'disconnected' || s === 'closed') {
        this.synced = false;
        this.waits.signal(undefined, { kind: 'gone', reason: `the TWS connection is ${s}` });
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
    this.events.onEvent(cb);
  }

  /** Called after every reconnect once the broker has re-read TWS: run the order manager's reconcile() there. */
  onReconnect(cb: () => void): void {
    this.reconnectListeners.push(cb);
  }

  async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    // An exit sent alone (reconcile) still needs its parent and OCA group.
    if (order.groupId && (order.role === 'take_profit' || order.role === 'stop_loss')) {
      const [ack] = await this.submitGroup([order]);
      return { brokerOrderId: ack.brokerOrderId };
    }
    this.assertOpen();
    if (!this.synced) await this.ensureSynced();
    const known = this.known(order);
    if (known) {
      if (!known.confirmed && known.ack) await known.ack;
      return { brokerOrderId: String(known.orderId) };
    }
    const placed = this.place(order, {});
    await placed.ack;
    return { brokerOrderId: String(placed.orderId) };
  }

  /**
   * A bracket as IB parent/child orders: legs TWS already has (by orderRef) are not placed again;
   * the missing ones are placed in order, each exit with the entry's IB id as parentId while the
   * entry works (alone, once it has filled) and the group id as ocaGroup, every one but the last
   * with transmit false so TWS releases them together.
   */
  async submitGroup(orders: readonly OrderRecord[]): Promise<Array<{ clientOrderId: string; brokerOrderId: string }>> {
    this.assertOpen();
    if (!this.synced) await this.ensureSynced();
    // Checked and placed without a pause, so a concurrent submit of the same ids sees these.
    const out: Array<{ clientOrderId: string; brokerOrderId: string } | undefined> = [];
    const missing: number[] = [];
    const waiting: Array<Promise<void>> = [];
    for (let i = 0; i < orders.length; i++) {
      const known = this.known(orders[i]);
      out.push(known ? { clientOrderId: orders[i].clientOrderId, brokerOrderId: String(known.orderId) } : undefined);
      if (!known) missing.push(i);
      else if (!known.confirmed && known.ack) waiting.push(known.ack);
    }
    const placed: KnownOrder[] = [];
    try {
      for (const [n, i] of missing.entries()) {
        const order = orders[i];
        const exit = order.role === 'take_profit' || order.role === 'stop_loss';
        let parentId: number | undefined;
        if (exit && order.groupId) {
          const parent = this.orders.byClientOrderId(order.groupId);
          if (!parent) throw new BrokerError('BROKER_REJECTED', `exit ${order.clientOrderId}: TWS knows no entry ${order.groupId} to attach it to`);
          if (!parent.final && (parent.phase === null || !isFinished(parent.phase))) parentId = parent.orderId;
        }
        const p = this.place(order, { parentId, ocaGroup: exit ? order.groupId : undefined, transmit: n === missing.length - 1 });
        placed.push(p);
        out[i] = { clientOrderId: order.clientOrderId, brokerOrderId: String(p.orderId) };
      }
    } finally {
      // Legs placed before a failure are held at TWS (transmit false) and will never work; their
      // acknowledgements will not come either.
      if (placed.length > 0 && placed.length < missing.length) for (const p of placed) void p.ack?.catch(() => undefined);
    }
    await Promise.all([...waiting, ...placed.map((p) => p.ack)]);
    return out as Array<{ clientOrderId: string; brokerOrderId: string }>;
  }

  /** An order TWS already has (throws BROKER_REJECTED for one it refused), for an idempotent submit. */
  private known(order: OrderRecord): KnownOrder | undefined {
    const id = order.clientOrderId;
    const known = this.orders.byClientOrderId(id);
    if (!known) return undefined;
    this.counts.duplicates++;
    if (known.rejectReason !== undefined) throw new BrokerError('BROKER_REJECTED', `IB rejected order ${id}: ${known.rejectReason}`);
    return known;
  }

  /** Places one order; its `ack` resolves when TWS acknowledges it. */
  private place(order: OrderRecord, link: PlacementLink): KnownOrder {
    const placed = placeOrder(this.client, this.orders, this.waits, this.epoch, order, link);
    this.counts.placed++;
    return placed;
  }

  async cancel(clientOrderId: string): Promise<void> {
    this.assertOpen();
    if (!this.synced) await this.ensureSynced();
    const known = this.orders.byClientOrderId(clientOrderId);
    if (!known || known.final || (known.phase !== null && isFinished(known.phase))) return;
    known.cancelRequested = true;
    const done = this.waits.waitFor(known.orderId, `the cancel of order ${clientOrderId}`, (s) => {
      switch (s.kind) {
        case 'status':
          return isFinished(s.phase) ? 'done' : undefined;
        case 'error':
          return s.error === 'not-cancellable' || s.error === 'cancel-confirmed' || s.error === 'refused' ? 'done' : undefined;
        case 'execution':
          return undefined;
        case 'gone':
          return unavailable(`${s.reason}: whether order ${clientOrderId} was cancelled is not known`);
      }
    });
    try {
      this.client.cancelOrder(known.orderId);
    } catch (err) {
      this.waits.signal(known.orderId, { kind: 'gone', reason: `cancel not sent (${(err as Error).message})` });
      await done.catch(() => undefined);
      throw unavailable(`cancel of order ${clientOrderId} was not sent: ${(err as Error).message}`, err);
    }
    await done;
  }

  async openOrders(): Promise<BrokerOrder[]> {
    this.assertOpen();
    const rows = await this.request('open orders', () => this.client.openOrders());
    this.orders.learnOpen(rows);
    const out: BrokerOrder[] = [];
    for (const r of rows) {
      const view = openOrderView(r);
      if (view) out.push(view);
    }
    return out;
  }

  async executions(sinceMs?: number): Promise<BrokerFill[]> {
    this.assertOpen();
    const rows = await this.request('executions', () => this.client.executions());
    this.orders.learnExecutions(rows, (execId, c) => this.commissions.learn(execId, c));
    // TWS writes execution times to the second.
    const from = sinceMs === undefined ? -Infinity : Math.floor(sinceMs / 1000) * 1000;
    const fills = await Promise.all(rows.map(async (r) => this.events.toBrokerFill(await this.commissions.fill(r, r.commission ?? this.commissions.known(r.execId)))));
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
    return {
      connection: this.client.connection.state,
      placed: this.counts.placed,
      duplicates: this.counts.duplicates,
      fills: this.events.fills,
      fillsWithoutCommission: this.commissions.fillsWithoutCommission,
      lateCommissions: this.commissions.lateCommissions,
      reconnects: this.counts.reconnects,
    };
  }

  /** Closes the connection. Fills still waiting for a commission are not emitted: reconcile finds them at TWS. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
    this.waits.signal(undefined, { kind: 'gone', reason: 'the IBKR broker was closed' });
    this.commissions.close();
    for (const off of this.detach.splice(0)) off();
    await this.client.close();
  }

  // ---------------------------------------------------------------- internals

  // biome-ignore lint/suspicious/noExplicitAny: one helper for the order client's and the connection's typed emitters, each listener typed at its call.
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
    const [open, execs] = await Promise.all([this.request('open orders', () => this.client.openOrders()), this.request('executions', () => this.client.executions())]);
    this.orders.learnOpen(open);
    this.orders.learnExecutions(execs, (execId, c) => this.commissions.learn(execId, c));
    // Sent on an earlier socket, never acknowledged, and TWS has neither it working nor a fill of
    // it: it did not arrive (or was refused at once). Forget it so reconciliation can send it.
    for (const known of this.orders.all()) {
      if (!known.confirmed && known.epoch < epoch) {
        this.orders.forget(known);
        this.log.warn({ clientOrderId: known.clientOrderId, orderId: known.orderId }, 'an order sent before the connection dropped never reached TWS; it may be sent again');
      }
    }
    if (epoch === this.epoch && this.client.connection.isReady) this.synced = true;
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
    ...(opts.maxRequestsPerSecond !== undefined ? { maxRequestsPerSecond: opts.maxRequestsPerSecond } : {}),
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
