/**
 * The paper broker: fills market orders at the open of the first bar after the order's bar
 * (start > order.barStart), moved against the order by `slippageBps`, with a per-share commission
 * that has a minimum. Limit orders rest until a later bar trades through the limit: a buy fills at
 * the open when the bar opens at or below the limit, or at the limit when the bar's low goes below
 * it (sells mirror this); slippage never makes a limit fill worse than its limit.
 *
 * State (cash, positions, working orders, recent fills, ids it has seen) lives in memory and is
 * written to the CheckpointStore under one key after every change, before the change is announced:
 * an event the order manager sees is always durable here, so a restart resumes working orders and
 * reconciliation finds every fill. Since that one value is rewritten on every change, the fills
 * and accepted ids it remembers are bounded: two days, and at most fillHistory / idHistory.
 * Resubmitting an id is a no-op while it is working or remembered; older duplicates are stopped
 * earlier, by the order journal.
 */
import type { Bar } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import type { CheckpointStore, OrderRecord } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition, BrokerError } from './broker.ts';
import { nextPosition } from './ledger.ts';

export interface PaperBrokerOptions {
  checkpoints: CheckpointStore;
  clock: Clock;
  /** Checkpoint key; default 'paper-broker'. */
  key?: string;
  startingCash?: number;
  slippageBps?: number;
  commissionPerShare?: number;
  minCommission?: number;
  /** Most fills kept for executions(), besides the two-day window; default 1000. */
  fillHistory?: number;
  /** Most client order ids remembered for idempotent submit, besides the two-day window; default 2000. */
  idHistory?: number;
}

interface PaperOrder extends BrokerOrder {
  barStart: number;
  acceptedAt: number;
}

interface PaperState {
  version: 1;
  cash: number;
  /** Last paper order number; brokerOrderId is `paper-<seq>`. */
  seq: number;
  /** Orders accepted since this state began (survives restarts; for tests and status). */
  accepted: number;
  positions: Record<string, BrokerPosition>;
  open: PaperOrder[];
  fills: BrokerFill[];
  /** [clientOrderId, brokerOrderId, acceptedAt], oldest first. */
  known: Array<[string, string, number]>;
}

export interface PaperBrokerStats {
  /** submit() calls on this instance, duplicates included. */
  submitCalls: number;
  /** Distinct orders accepted, across restarts. */
  accepted: number;
  open: number;
  fills: number;
}

/** How long fills and accepted ids are kept at least (count caps aside): reconciliation looks back a day. */
const HISTORY_MS = 2 * 24 * 3_600_000;
const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

export class PaperBroker implements Broker {
  readonly kind = 'paper' as const;
  private readonly opts: Required<Omit<PaperBrokerOptions, 'checkpoints' | 'clock'>>;
  private readonly checkpoints: CheckpointStore;
  private readonly clock: Clock;
  private state: PaperState;
  private readonly knownIds: Map<string, string>;
  private readonly listeners: Array<(e: BrokerEvent) => void> = [];
  private submitCalls = 0;

  constructor(options: PaperBrokerOptions) {
    this.checkpoints = options.checkpoints;
    this.clock = options.clock;
    this.opts = {
      key: options.key ?? 'paper-broker',
      startingCash: options.startingCash ?? 100_000,
      slippageBps: options.slippageBps ?? 1,
      commissionPerShare: options.commissionPerShare ?? 0.005,
      minCommission: options.minCommission ?? 1,
      fillHistory: options.fillHistory ?? 1000,
      idHistory: options.idHistory ?? 2000,
    };
    for (const k of ['startingCash', 'slippageBps', 'commissionPerShare', 'minCommission'] as const) {
      const v = this.opts[k];
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`paper broker ${k} must be a finite number >= 0, got ${v}`);
    }
    const saved = this.checkpoints.get<PaperState>(this.opts.key);
    if (saved !== undefined && saved.version !== 1) {
      throw new BrokerError('BROKER_STATE', `paper broker state under "${this.opts.key}" has unknown version ${String((saved as { version?: unknown }).version)}`);
    }
    this.state = saved ?? { version: 1, cash: this.opts.startingCash, seq: 0, accepted: 0, positions: {}, open: [], fills: [], known: [] };
    this.knownIds = new Map(this.state.known.map(([id, brokerId]) => [id, brokerId]));
  }

  onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }

  async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    this.submitCalls++;
    const existing = this.knownIds.get(order.clientOrderId) ?? this.state.open.find((o) => o.clientOrderId === order.clientOrderId)?.brokerOrderId;
    if (existing !== undefined) return { brokerOrderId: existing };
    const problem = paperOrderProblem(order);
    if (problem) throw new BrokerError('BROKER_REJECTED', `paper broker rejected ${order.clientOrderId}: ${problem}`);

    const brokerOrderId = `paper-${this.state.seq + 1}`;
    const now = this.clock.now();
    const working: PaperOrder = {
      clientOrderId: order.clientOrderId,
      brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      type: order.type,
      ...(order.type === 'limit' ? { limitPrice: order.limitPrice } : {}),
      filledQty: 0,
      state: 'submitted',
      barStart: order.barStart,
      acceptedAt: now,
    };
    this.knownIds.set(order.clientOrderId, brokerOrderId);
    const known = [...this.state.known, [order.clientOrderId, brokerOrderId, now] as [string, string, number]];
    // Both histories are kept small because the whole state is written on every change. Duplicate
    // sends older than two days are stopped by the order journal, which keeps every id.
    let drop = 0;
    while (drop < known.length && (known.length - drop > this.opts.idHistory || known[drop][2] < now - HISTORY_MS)) drop++;
    for (let i = 0; i < drop; i++) this.knownIds.delete(known[i][0]);
    if (drop > 0) known.splice(0, drop);
    this.state = { ...this.state, seq: this.state.seq + 1, accepted: this.state.accepted + 1, open: [...this.state.open, working], known };
    await this.persist();
    this.emit({ type: 'accepted', clientOrderId: order.clientOrderId, brokerOrderId, time: now });
    return { brokerOrderId };
  }

  async cancel(clientOrderId: string): Promise<void> {
    const open = this.state.open.filter((o) => o.clientOrderId !== clientOrderId);
    if (open.length === this.state.open.length) return;
    this.state = { ...this.state, open };
    await this.persist();
    this.emit({ type: 'cancelled', clientOrderId, time: this.clock.now(), reason: 'cancel requested' });
  }

  async openOrders(): Promise<BrokerOrder[]> {
    return this.state.open.map(({ barStart: _b, acceptedAt: _a, ...o }) => ({ ...o }));
  }

  async executions(sinceMs?: number): Promise<BrokerFill[]> {
    return this.state.fills.filter((f) => sinceMs === undefined || f.time >= sinceMs).map((f) => ({ ...f }));
  }

  async positions(): Promise<Record<string, BrokerPosition>> {
    const out: Record<string, BrokerPosition> = {};
    for (const [symbol, p] of Object.entries(this.state.positions)) out[symbol] = { ...p };
    return out;
  }

  cash(): number {
    return this.state.cash;
  }

  stats(): PaperBrokerStats {
    return { submitCalls: this.submitCalls, accepted: this.state.accepted, open: this.state.open.length, fills: this.state.fills.length };
  }

  async onBar(bar: Bar): Promise<void> {
    // Fast exit: on most bars nothing is working for this symbol.
    let due = false;
    for (const o of this.state.open) {
      if (o.symbol === bar.symbol && bar.start > o.barStart) {
        due = true;
        break;
      }
    }
    if (!due) return;

    const fills: BrokerFill[] = [];
    const stillOpen: PaperOrder[] = [];
    let cash = this.state.cash;
    const positions = { ...this.state.positions };
    for (const o of this.state.open) {
      const price = o.symbol === bar.symbol && bar.start > o.barStart ? this.fillPrice(o, bar) : undefined;
      if (price === undefined) {
        stillOpen.push(o);
        continue;
      }
      const qty = o.qty - o.filledQty;
      const commission = round4(Math.max(this.opts.commissionPerShare * qty, this.opts.minCommission));
      const signed = o.side === 'buy' ? qty : -qty;
      cash = round4(cash - signed * price - commission);
      positions[o.symbol] = nextPosition(positions[o.symbol], signed, price);
      if (positions[o.symbol].qty === 0) delete positions[o.symbol];
      fills.push({
        execId: `${o.clientOrderId}-f1`,
        clientOrderId: o.clientOrderId,
        brokerOrderId: o.brokerOrderId,
        symbol: o.symbol,
        side: o.side,
        qty,
        price,
        time: bar.start,
        commission,
      });
    }
    const history = [...this.state.fills, ...fills];
    let drop = 0;
    while (drop < history.length && (history.length - drop > this.opts.fillHistory || history[drop].time < bar.start - HISTORY_MS)) drop++;
    if (drop > 0) history.splice(0, drop);
    this.state = { ...this.state, cash, positions, open: stillOpen, fills: history };
    await this.persist();
    for (const fill of fills) this.emit({ type: 'fill', clientOrderId: fill.clientOrderId, fill: { ...fill } });
  }

  private fillPrice(o: PaperOrder, bar: Bar): number | undefined {
    const slip = this.opts.slippageBps / 10_000;
    const adverse = o.side === 'buy' ? bar.open * (1 + slip) : bar.open * (1 - slip);
    if (o.type === 'market') return round4(adverse);
    const limit = o.limitPrice!;
    if (o.side === 'buy') {
      if (bar.open <= limit) return round4(Math.min(adverse, limit));
      return bar.low < limit ? limit : undefined;
    }
    if (bar.open >= limit) return round4(Math.max(adverse, limit));
    return bar.high > limit ? limit : undefined;
  }

  private persist(): Promise<void> {
    // The state object is replaced, never mutated, so the value handed to put() cannot change under it.
    return this.checkpoints.put(this.opts.key, this.state);
  }

  private emit(e: BrokerEvent): void {
    for (const cb of this.listeners) cb(e);
  }
}

function paperOrderProblem(order: OrderRecord): string | undefined {
  if (!Number.isSafeInteger(order.qty) || order.qty <= 0) return `qty must be a positive whole number, got ${order.qty}`;
  if (order.side !== 'buy' && order.side !== 'sell') return `side must be buy or sell, got ${String(order.side)}`;
  if (order.type === 'limit') {
    if (!(typeof order.limitPrice === 'number' && order.limitPrice > 0 && Number.isFinite(order.limitPrice))) return `limit order needs a positive limitPrice, got ${String(order.limitPrice)}`;
  } else if (order.type !== 'market') {
    return `type must be market or limit, got ${String(order.type)}`;
  }
  return undefined;
}
