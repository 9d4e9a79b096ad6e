/**
 * Orders at Interactive Brokers through @stoqey/ib, on the order client's own client id.
 *
 * Design decisions:
 * - Our client order id travels in IB's `orderRef`, so after a restart IB's open orders and
 *   executions can be matched to the order journal (`reconciled` after every reconnect).
 * - IB order ids come from nextValidId and increase locally; every handshake raises the floor.
 * - `placeOrder` refuses (IBKR_DISCONNECTED) instead of queueing while TWS is not connected:
 *   stoqey would send a queued order after the reconnect, and a caller that also retried would
 *   send it twice. The caller decides after reconciliation.
 * - TWS repeats order statuses and may send a commission before or after its execution; events
 *   are deduplicated by execId, and `executions()` joins commissions whenever they arrive.
 */
import { EventEmitter } from 'node:events';
import {
  EventName,
  type CommissionReport,
  type Contract,
  type Execution,
  type Order,
  type OrderState,
} from '@stoqey/ib';
import { isValidSymbol } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import { IbkrConnection, type IbkrConnectionState, type IbkrConnectionTuning, type IbkrEndpoint, type IbRequestError } from './connection.ts';
import { stockContract } from './contract.ts';
import { IbkrError } from './errors.ts';
import { checkOrderFields, toIbOrder, type IbkrOrderRequest } from './order-mapping.ts';

export type { IbkrOrderRequest } from './order-mapping.ts';

export interface IbkrOpenOrder {
  orderId: number;
  permId?: number;
  clientOrderId: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  /** IB's orderType (MKT, LMT, STP, STP LMT, TRAIL, ...). */
  type: string;
  limitPrice?: number;
  /** STP / STP LMT: the stop; TRAIL: the trail amount. */
  auxPrice?: number;
  trailingPercent?: number;
  trailStopPrice?: number;
  tif?: string;
  outsideRth?: boolean;
  parentId?: number;
  ocaGroup?: string;
  status: string;
  filled?: number;
  remaining?: number;
  avgFillPrice?: number;
}

export interface IbkrExecution {
  execId: string;
  orderId: number;
  /** Our client order id (IB's orderRef). */
  orderRef: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
  /** As TWS wrote it (see parseTwsDate). */
  time: string;
  commission?: number;
  commissionCurrency?: string;
}

export interface IbkrOrderClientEvents {
  status: [orderId: number, status: string, filled: number, remaining: number, avgFillPrice: number];
  execution: [execution: { execId: string; orderId: number; orderRef: string; symbol: string; side: 'buy' | 'sell'; qty: number; price: number; time: string }];
  commission: [report: { execId: string; commission: number; currency: string }];
  /** An error about one order: 201 rejected, 202 cancelled, 103 duplicate id, 10147/10148 cannot cancel. */
  orderError: [orderId: number, code: number, message: string];
  connection: [state: IbkrConnectionState];
  /** After every reconnect: what IB says is open and what it executed, for the journal to match. */
  reconciled: [state: { openOrders: IbkrOpenOrder[]; executions: IbkrExecution[] }];
  /** The reconcile after a reconnect failed (dropped again, timed out); the next reconnect retries. */
  reconcileFailed: [error: Error];
}

export interface IbkrOrderClientOptions {
  connection: IbkrConnection;
  clock: Clock;
  ownsConnection?: boolean;
  /** Account for orders; default: the one TWS assigns. */
  account?: string;
  /** Wait for openOrders()/executions() answers. Default 30 s. */
  requestTimeoutMs?: number;
}

const sideOf = (action: string | undefined): 'buy' | 'sell' => (action === 'SELL' || action === 'SLD' || action === 'SSHORT' ? 'sell' : 'buy');

export class IbkrOrderClient extends EventEmitter<IbkrOrderClientEvents> {
  readonly connection: IbkrConnection;
  private readonly clock: Clock;
  private readonly ownsConnection: boolean;
  private readonly account?: string;
  private readonly requestTimeoutMs: number;
  private nextId = 0;
  private readonly seenExecs = new Set<string>();
  private readonly seenCommissions = new Set<string>();
  private readonly commissions = new Map<string, { commission: number; currency: string }>();
  private openOrdersInFlight?: Promise<IbkrOpenOrder[]>;
  private closed = false;

  /** An order client on its own connection to `endpoint` (closed with the client). */
  static create(
    endpoint: IbkrEndpoint,
    clock: Clock,
    opts: Omit<IbkrOrderClientOptions, 'connection' | 'clock'> & { connectionOptions?: IbkrConnectionTuning } = {},
  ): IbkrOrderClient {
    const { connectionOptions, ...clientOpts } = opts;
    const connection = new IbkrConnection({ ...connectionOptions, ...endpoint, clock });
    return new IbkrOrderClient({ ...clientOpts, connection, clock, ownsConnection: true });
  }

  constructor(opts: IbkrOrderClientOptions) {
    super();
    this.connection = opts.connection;
    this.clock = opts.clock;
    this.ownsConnection = opts.ownsConnection ?? false;
    this.account = opts.account;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    const api = this.connection.api;
    api.on(EventName.nextValidId, (id: number) => {
      this.nextId = Math.max(this.nextId, id);
    });
    api.on(EventName.orderStatus, (orderId: number, status: string, filled: number | undefined, remaining: number | undefined, avgFillPrice: number | undefined) => {
      this.emit('status', orderId, status, filled ?? 0, remaining ?? 0, avgFillPrice ?? 0);
    });
    api.on(EventName.execDetails, (_reqId: number, contract: Contract, exec: Execution) => this.onExecution(contract, exec));
    api.on(EventName.commissionReport, (r: CommissionReport) => this.onCommission(r));
    this.connection.on('requestError', (e: IbRequestError) => {
      if (e.policy.kind === 'order' || e.code === 200 || e.code === 201) this.emit('orderError', e.reqId, e.code, e.message);
    });
    this.connection.on('state', (s) => this.emit('connection', s));
    this.connection.on('ready', ({ reconnect }) => {
      // A reconcile cut short by another drop is retried by the next reconnect.
      if (reconnect) this.reconcile().catch((err: Error) => this.emit('reconcileFailed', err));
    });
  }

  /** Connects and resolves once TWS has handed out the first order id. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.connection.start();
    await this.connection.whenReady(timeoutMs);
  }

  /**
   * Sends one order and returns its IB order id. Refuses bad input (naming the field) and refuses
   * while disconnected rather than queueing.
   */
  placeOrder(req: IbkrOrderRequest): number {
    if (this.closed) throw new IbkrError('IBKR_CLOSED', 'the IBKR order client is closed');
    if (typeof req.clientOrderId !== 'string' || req.clientOrderId.length === 0 || req.clientOrderId.length > 64) {
      throw new IbkrError('IBKR_BAD_INPUT', 'clientOrderId must be a non-empty string of at most 64 characters');
    }
    if (!isValidSymbol(req.symbol)) throw new IbkrError('IBKR_BAD_INPUT', `symbol must be an upper-case ticker, got ${JSON.stringify(req.symbol)}`);
    if (req.side !== 'buy' && req.side !== 'sell') throw new IbkrError('IBKR_BAD_INPUT', `side must be buy or sell, got ${JSON.stringify(req.side)}`);
    if (!(Number.isFinite(req.qty) && req.qty > 0)) throw new IbkrError('IBKR_BAD_INPUT', `qty must be a positive number, got ${req.qty}`);
    checkOrderFields(req);
    if (!this.connection.isReady || this.nextId <= 0) {
      throw new IbkrError('IBKR_DISCONNECTED', `not connected to TWS (${this.connection.state}): order ${req.clientOrderId} was not sent`);
    }
    const orderId = this.nextId++;
    const order = toIbOrder(req, this.account);
    this.connection.api.placeOrder(orderId, stockContract(req.symbol), order);
    return orderId;
  }

  cancelOrder(orderId: number): void {
    if (!Number.isInteger(orderId) || orderId <= 0) throw new IbkrError('IBKR_BAD_INPUT', `orderId must be a positive integer, got ${orderId}`);
    if (!this.connection.isReady) throw new IbkrError('IBKR_DISCONNECTED', `not connected to TWS: cancel of order ${orderId} was not sent`);
    this.connection.api.cancelOrder(orderId);
  }

  /** This client's open orders as IB sees them. */
  openOrders(): Promise<IbkrOpenOrder[]> {
    // reqOpenOrders answers all callers with one stream: share one request.
    this.openOrdersInFlight ??= this.requestOpenOrders().finally(() => (this.openOrdersInFlight = undefined));
    return this.openOrdersInFlight;
  }

  /** Today's executions of this client, with their commissions where IB sent them. */
  executions(): Promise<IbkrExecution[]> {
    if (!this.connection.isReady) return Promise.reject(new IbkrError('IBKR_DISCONNECTED', 'not connected to TWS'));
    const api = this.connection.api;
    const reqId = this.connection.nextRequestId();
    return this.collect<IbkrExecution[]>('executions', (finish) => {
      const rows = new Map<string, IbkrExecution>();
      const onExec = (r: number, contract: Contract, e: Execution) => {
        if (r !== reqId || !e.execId) return;
        rows.set(e.execId, this.toExecution(contract, e));
      };
      const onEnd = (r: number) => {
        if (r !== reqId) return;
        finish([...rows.values()].map((x) => ({ ...x, ...this.commissionOf(x.execId) })));
      };
      api.on(EventName.execDetails, onExec);
      api.on(EventName.execDetailsEnd, onEnd);
      api.reqExecutions(reqId, {});
      return () => {
        api.off(EventName.execDetails, onExec);
        api.off(EventName.execDetailsEnd, onEnd);
      };
    });
  }

  /** Open orders and executions together, as emitted in `reconciled`. */
  async reconcile(): Promise<{ openOrders: IbkrOpenOrder[]; executions: IbkrExecution[] }> {
    const [openOrders, executions] = await Promise.all([this.openOrders(), this.executions()]);
    const state = { openOrders, executions };
    this.emit('reconciled', state);
    return state;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ownsConnection) await this.connection.close();
  }

  private requestOpenOrders(): Promise<IbkrOpenOrder[]> {
    if (!this.connection.isReady) return Promise.reject(new IbkrError('IBKR_DISCONNECTED', 'not connected to TWS'));
    const api = this.connection.api;
    return this.collect<IbkrOpenOrder[]>('open orders', (finish) => {
      const rows = new Map<number, IbkrOpenOrder>();
      const onOpen = (orderId: number, contract: Contract, order: Order, state: OrderState) => {
        const prev = rows.get(orderId);
        rows.set(orderId, {
          ...prev,
          orderId,
          permId: order.permId,
          clientOrderId: order.orderRef ?? '',
          symbol: contract.symbol ?? '',
          side: sideOf(order.action),
          qty: order.totalQuantity ?? 0,
          type: order.orderType ?? '',
          limitPrice: order.lmtPrice,
          auxPrice: order.auxPrice,
          trailingPercent: order.trailingPercent,
          trailStopPrice: order.trailStopPrice,
          tif: order.tif,
          outsideRth: order.outsideRth,
          parentId: order.parentId || undefined,
          ocaGroup: order.ocaGroup || undefined,
          status: state.status ?? 'Unknown',
        });
      };
      const onStatus = (orderId: number, status: string, filled?: number, remaining?: number, avgFillPrice?: number) => {
        const prev = rows.get(orderId);
        if (prev) rows.set(orderId, { ...prev, status, filled, remaining, avgFillPrice });
      };
      const onEnd = () => finish([...rows.values()]);
      api.on(EventName.openOrder, onOpen);
      api.on(EventName.orderStatus, onStatus);
      api.on(EventName.openOrderEnd, onEnd);
      api.reqOpenOrders();
      return () => {
        api.off(EventName.openOrder, onOpen);
        api.off(EventName.orderStatus, onStatus);
        api.off(EventName.openOrderEnd, onEnd);
      };
    });
  }

  /** Runs one request/answer exchange with a timeout and a rejection if the socket drops. */
  private collect<T>(what: string, run: (finish: (v: T) => void) => () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let detach: (() => void) | undefined;
      let done = false;
      const end = (err?: Error, value?: T) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.connection.off('state', onState);
        detach?.();
        if (err) reject(err);
        else resolve(value as T);
      };
      const onState = (s: IbkrConnectionState) => {
        if (s === 'disconnected' || s === 'closed') end(new IbkrError('IBKR_DISCONNECTED', `TWS connection dropped while waiting for ${what}`));
      };
      const timer = this.clock.setTimeout(() => end(new IbkrError('IBKR_TIMEOUT', `no answer for ${what} within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
      this.connection.on('state', onState);
      detach = run((v) => end(undefined, v));
      if (done) detach();
    });
  }

  private toExecution(contract: Contract, e: Execution): IbkrExecution {
    return {
      execId: e.execId ?? '',
      orderId: e.orderId ?? 0,
      orderRef: e.orderRef ?? '',
      symbol: contract.symbol ?? '',
      side: sideOf(e.side),
      qty: e.shares ?? 0,
      price: e.price ?? 0,
      time: e.time ?? '',
    };
  }

  private commissionOf(execId: string): { commission?: number; commissionCurrency?: string } {
    const c = this.commissions.get(execId);
    return c ? { commission: c.commission, commissionCurrency: c.currency } : {};
  }

  private onExecution(contract: Contract, e: Execution): void {
    if (!e.execId || this.seenExecs.has(e.execId)) return;
    this.seenExecs.add(e.execId);
    const x = this.toExecution(contract, e);
    this.emit('execution', { execId: x.execId, orderId: x.orderId, orderRef: x.orderRef, symbol: x.symbol, side: x.side, qty: x.qty, price: x.price, time: x.time });
  }

  private onCommission(r: CommissionReport): void {
    if (!r.execId || r.commission === undefined) return;
    this.commissions.set(r.execId, { commission: r.commission, currency: r.currency ?? '' });
    if (this.seenCommissions.has(r.execId)) return;
    this.seenCommissions.add(r.execId);
    this.emit('commission', { execId: r.execId, commission: r.commission, currency: r.currency ?? '' });
  }
}
