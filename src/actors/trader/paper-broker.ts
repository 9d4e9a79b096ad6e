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
 *
 * Order types, time in force and brackets follow the bar rules in paper-fills.ts (stops trigger
 * when a bar trades through them and fill at the open on a gap, else at the stop, with slippage;
 * a trailing stop moves with each bar's extreme). On top of those, per bar and in this order:
 * - `day` orders whose session has closed by the bar's start are cancelled first (the close of
 *   the session they were accepted in, by the NYSE calendar with its early closes; after hours
 *   too with outsideRth). Only with a calendar: the 24/7 simulated market has no close.
 * - Entries are worked before exits. A bracket's exits work once their entry has filled: in the
 *   entry's own bar only the stop-loss can fill (a bar does not say whether its high or its low
 *   came first, so the worse is assumed), from the next bar both; when both could fill on one bar
 *   the stop-loss is taken. When one exit fills, its sibling is cancelled in the same step, in
 *   the same durable write, so no restart can see one without the other.
 * - An `ioc` order that its first bar does not fill is cancelled.
 * - Cancelling an entry cancels its exits; cancelling an exit cancels its sibling.
 */
import type { Bar } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import type { CheckpointStore, OrderRecord, OrderRole, TimeInForce } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, type BrokerOrder, type BrokerPosition, BrokerError } from './broker.ts';
import { nextPosition } from './ledger.ts';
import { orderSpecProblem } from './order-types.ts';
import { type DayOrderCalendar, dayOrderExpiry, onBar as barRule, type TriggerState } from './paper-fills.ts';

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
  /** Ends `day` orders at the session's close. Without one (the 24/7 simulated market) day orders do not expire. */
  calendar?: DayOrderCalendar;
}

interface PaperOrder extends BrokerOrder {
  barStart: number;
  acceptedAt: number;
  /** stop_limit: triggered, now a limit. */
  triggered?: boolean;
  /** trailing_stop: best price seen. */
  extreme?: number;
  /** `day` orders: when the session they belong to closes. */
  expiresAt?: number;
  /** Bracket exits: false until the entry fills; then the start of the bar that filled it. */
  activeFrom?: number | false;
  /** ioc: its one bar has been seen. */
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

/** What accept() took: the acks for every leg, the legs newly accepted, and when. */
interface Accepted {
  out: Array<{ clientOrderId: string; brokerOrderId: string }>;
  accepted: PaperOrder[];
  now: number;
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
const isExit = (role: OrderRole | undefined) => role === 'take_profit' || role === 'stop_loss';
/** Entries first, then exits with the stop-loss before the take-profit (the worse outcome first). */
const RANK: Record<string, number> = { entry: 0, undefined: 0, stop_loss: 1, take_profit: 2 };

export class PaperBroker implements Broker {
  readonly kind = 'paper' as const;
  private readonly opts: Required<Omit<PaperBrokerOptions, 'checkpoints' | 'clock' | 'calendar'>>;
  private readonly checkpoints: CheckpointStore;
  private readonly clock: Clock;
  private readonly calendar?: DayOrderCalendar;
  private state: PaperState;
  private readonly knownIds: Map<string, string>;
  private readonly listeners: Array<(e: BrokerEvent) => void> = [];
  private submitCalls = 0;

  constructor(options: PaperBrokerOptions) {
    this.checkpoints = options.checkpoints;
    this.clock = options.clock;
    this.calendar = options.calendar;
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
    // With a store durable on return, the on-return path. The class's own methods, not closures
    // made per broker: a closure per broker (per backtest run) was kept by the call sites' type
    // feedback, which V8's young-generation GC holds on to, and with it that finished run's broker,
    // order manager and every order, promoted to the old generation at the next scavenge: ~1 MB per
    // sweep combination, the bulk of a sweep's GC work.
    if (this.checkpoints.putNow !== undefined) {
      this.submitGroupNow = this.submitGroupOnReturn;
      this.submitNow = this.submitOnReturn;
      this.onBarNow = this.onBarOnReturn;
    }
  }

  private submitGroupOnReturn(orders: readonly OrderRecord[]): Array<{ clientOrderId: string; brokerOrderId: string }> {
    const taken = this.accept(orders);
    if (taken.accepted.length === 0) return taken.out;
    this.checkpoints.putNow!(this.opts.key, this.state);
    this.announce(taken);
    return taken.out;
  }

  private submitOnReturn(order: OrderRecord): { brokerOrderId: string } {
    return { brokerOrderId: this.submitGroupOnReturn([order])[0].brokerOrderId };
  }

  private onBarOnReturn(bar: Bar): void {
    const events = this.fillBar(bar);
    if (events === undefined) return;
    this.checkpoints.putNow!(this.opts.key, this.state);
    this.emitAll(events);
  }

  onEvent(cb: (e: BrokerEvent) => void): void {
    this.listeners.push(cb);
  }

  async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    const [ack] = await this.submitGroup([order]);
    return { brokerOrderId: ack.brokerOrderId };
  }

  /**
   * The synchronous path, offered only when the checkpoint store is durable on return (putNow: the
   * in-memory store of a backtest). The same steps as submit, submitGroup and onBar, in the same
   * order (state, durable write, events), with the write done on return instead of awaited; they
   * throw where those reject. Set in the constructor, so a broker on a disk store has none of them
   * and callers take the promise path.
   */
  readonly submitNow?: (order: OrderRecord) => { brokerOrderId: string };
  readonly submitGroupNow?: (orders: readonly OrderRecord[]) => Array<{ clientOrderId: string; brokerOrderId: string }>;
  readonly onBarNow?: (bar: Bar) => void;

  /**
   * Accepts a bracket (entry first, then its exits) in one durable write: after a crash either
   * every leg is working or none is. Legs already known keep their id (idempotent per leg); an
   * exit sent alone works once its entry has filled, and is refused when its entry ended unfilled.
   */
  async submitGroup(orders: readonly OrderRecord[]): Promise<Array<{ clientOrderId: string; brokerOrderId: string }>> {
    const taken = this.accept(orders);
    if (taken.accepted.length === 0) return taken.out;
    await this.persist();
    this.announce(taken);
    return taken.out;
  }

  /** submitGroup's changes to the state, before the durable write: legs known, checked, accepted. */
  private accept(orders: readonly OrderRecord[]): Accepted {
    this.submitCalls++;
    const out: Array<{ clientOrderId: string; brokerOrderId: string }> = [];
    const fresh: OrderRecord[] = [];
    for (const order of orders) {
      const existing = this.knownIds.get(order.clientOrderId) ?? this.state.open.find((o) => o.clientOrderId === order.clientOrderId)?.brokerOrderId;
      if (existing !== undefined) out.push({ clientOrderId: order.clientOrderId, brokerOrderId: existing });
      else fresh.push(order);
    }
    if (fresh.length === 0) return { out, accepted: [], now: 0 };
    for (const order of fresh) {
      const problem = paperOrderProblem(order);
      if (problem) throw new BrokerError('BROKER_REJECTED', `paper broker rejected ${order.clientOrderId}: ${problem}`);
    }

    const now = this.clock.now();
    let seq = this.state.seq;
    const accepted: PaperOrder[] = [];
    const known = this.state.known.slice();
    for (const order of fresh) {
      let activeFrom: number | false | undefined;
      if (isExit(order.role) && order.groupId) {
        const entryWorking = this.state.open.some((o) => o.clientOrderId === order.groupId) || fresh.some((o) => o.clientOrderId === order.groupId);
        const entryFill = this.state.fills.find((f) => f.clientOrderId === order.groupId);
        if (entryWorking) activeFrom = false;
        else if (entryFill)
          activeFrom = entryFill.time + 1; // works from the bar after its entry's
        else throw new BrokerError('BROKER_REJECTED', `paper broker rejected ${order.clientOrderId}: its entry ${order.groupId} is not working and never filled`);
      }
      const brokerOrderId = `paper-${++seq}`;
      accepted.push(this.working(order, brokerOrderId, now, activeFrom));
      this.knownIds.set(order.clientOrderId, brokerOrderId);
      known.push([order.clientOrderId, brokerOrderId, now]);
      out.push({ clientOrderId: order.clientOrderId, brokerOrderId });
    }
    // Both histories are kept small because the whole state is written on every change. Duplicate
    // sends older than two days are stopped by the order journal, which keeps every id.
    let drop = 0;
    while (drop < known.length && (known.length - drop > this.opts.idHistory || known[drop][2] < now - HISTORY_MS)) drop++;
    for (let i = 0; i < drop; i++) this.knownIds.delete(known[i][0]);
    if (drop > 0) known.splice(0, drop);
    const st = this.state;
    // Every field written out (not a spread with overrides, a slow copy in V8): this runs per order.
    this.state = { version: 1, cash: st.cash, seq, accepted: st.accepted + accepted.length, positions: st.positions, open: st.open.concat(accepted), fills: st.fills, known };
    return { out, accepted, now };
  }

  /** Once the accepted legs are durable: their events. */
  private announce(taken: Accepted): void {
    for (const o of taken.accepted) this.emit({ type: 'accepted', clientOrderId: o.clientOrderId, brokerOrderId: o.brokerOrderId, time: taken.now });
  }

  async cancel(clientOrderId: string): Promise<void> {
    const target = this.state.open.find((o) => o.clientOrderId === clientOrderId);
    if (!target) return;
    const gone = new Set([clientOrderId, ...this.dependents(target).map((o) => o.clientOrderId)]);
    this.state = { ...this.state, open: this.state.open.filter((o) => !gone.has(o.clientOrderId)) };
    await this.persist();
    const time = this.clock.now();
    this.emit({ type: 'cancelled', clientOrderId, time, reason: 'cancel requested' });
    for (const id of gone) if (id !== clientOrderId) this.emit({ type: 'cancelled', clientOrderId: id, time, reason: `bracket leg ${clientOrderId} was cancelled` });
  }

  async openOrders(): Promise<BrokerOrder[]> {
    return this.state.open.map(({ barStart: _b, acceptedAt: _a, triggered: _t, extreme: _e, expiresAt: _x, activeFrom: _f, ...o }) => ({ ...o }));
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

  /** Whether `bar` can fill or expire anything: on most bars nothing is working for its symbol and nothing expires. */
  barDue(bar: Bar): boolean {
    for (const o of this.state.open) {
      if ((o.symbol === bar.symbol && bar.start > o.barStart) || (o.expiresAt !== undefined && o.expiresAt <= bar.start)) return true;
    }
    return false;
  }

  async onBar(bar: Bar): Promise<void> {
    const events = this.fillBar(bar);
    if (events === undefined) return;
    await this.persist();
    this.emitAll(events);
  }

  /** onBar's changes to the state, before the durable write; the events to announce after it (undefined: nothing changed). */
  private fillBar(bar: Bar): BrokerEvent[] | undefined {
    if (!this.barDue(bar)) return undefined;

    const events: BrokerEvent[] = [];
    const fills: BrokerFill[] = [];
    let cash = this.state.cash;
    // Copied on the first fill, and without `delete` (which would leave V8 a slow dictionary object).
    let positions = this.state.positions;
    let ownPositions = false;
    const slip = this.opts.slippageBps / 10_000;
    // Orders are replaced (never mutated) so the persisted state stays consistent until the write.
    const open = new Map<string, PaperOrder>();
    let expiring = false;
    const candidates: PaperOrder[] = [];
    for (const o of this.state.open) {
      open.set(o.clientOrderId, o);
      if (o.expiresAt !== undefined && o.expiresAt <= bar.start) expiring = true;
      if (o.symbol === bar.symbol && bar.start > o.barStart) candidates.push(o);
    }

    if (expiring) {
      for (const o of [...open.values()]) {
        if (o.expiresAt === undefined || o.expiresAt > bar.start || !open.has(o.clientOrderId)) continue;
        cancelIn(open, events, bar.start, o, `day order expired at the session close ${new Date(o.expiresAt).toISOString()}`);
        for (const d of this.dependents(o, [...open.values()])) cancelIn(open, events, bar.start, d, `its entry ${o.clientOrderId} expired unfilled`);
      }
    }

    if (candidates.length > 1) candidates.sort((a, b) => RANK[String(a.role)] - RANK[String(b.role)]);
    for (const o of candidates) {
      const current = open.get(o.clientOrderId);
      if (!current) continue; // cancelled earlier in this step (a sibling filled)
      if (current.activeFrom === false) continue; // an exit whose entry has not filled
      if (current.activeFrom !== undefined && current.activeFrom === bar.start && current.role === 'take_profit') continue;
      const outcome = barRule(current as TriggerState, bar, slip);
      const next: PaperOrder = outcome.next === (current as TriggerState) ? current : { ...current, ...outcome.next };
      if (outcome.price === undefined) {
        if (current.tif === 'ioc') {
          cancelIn(open, events, bar.start, current, 'ioc: not filled on its first bar');
          for (const d of this.dependents(current, [...open.values()])) cancelIn(open, events, bar.start, d, `its entry ${current.clientOrderId} was not filled (ioc)`);
          continue;
        }
        if (next !== current) open.set(current.clientOrderId, next);
        continue;
      }
      const price = outcome.price;
      const qty = next.qty - next.filledQty;
      const commission = round4(Math.max(this.opts.commissionPerShare * qty, this.opts.minCommission));
      const signed = next.side === 'buy' ? qty : -qty;
      cash = round4(cash - signed * price - commission);
      const moved = nextPosition(positions[next.symbol], signed, price);
      if (moved.qty === 0) {
        positions = withoutKey(positions, next.symbol);
        ownPositions = true;
      } else {
        if (!ownPositions) {
          positions = { ...positions };
          ownPositions = true;
        }
        positions[next.symbol] = moved;
      }
      const fill: BrokerFill = {
        execId: `${next.clientOrderId}-f1`,
        clientOrderId: next.clientOrderId,
        brokerOrderId: next.brokerOrderId,
        symbol: next.symbol,
        side: next.side,
        qty,
        price,
        time: bar.start,
        commission,
      };
      fills.push(fill);
      events.push({ type: 'fill', clientOrderId: fill.clientOrderId, fill });
      open.delete(next.clientOrderId);
      if (next.groupId === undefined) {
        // A lone order: no legs to cancel or to wake.
      } else if (isExit(next.role)) {
        for (const d of this.dependents(next, [...open.values()])) cancelIn(open, events, bar.start, d, `one-cancels-other: ${next.clientOrderId} filled`);
      } else {
        // The entry filled: its exits work from this bar (the stop-loss at once, the take-profit from the next bar).
        for (const child of [...open.values()]) {
          if (child.groupId === next.clientOrderId && isExit(child.role) && child.activeFrom === false)
            open.set(child.clientOrderId, { ...child, activeFrom: bar.start, barStart: Math.min(child.barStart, bar.start - 1) });
        }
      }
    }

    if (events.length === 0 && open.size === this.state.open.length && [...open.values()].every((o, i) => o === this.state.open[i])) return undefined;
    const before = this.state.fills;
    const size = before.length + fills.length;
    let drop = 0;
    while (drop < size && (size - drop > this.opts.fillHistory || (drop < before.length ? before[drop] : fills[drop - before.length]).time < bar.start - HISTORY_MS)) drop++;
    const history = drop < before.length ? before.slice(drop) : [];
    for (let i = Math.max(drop, before.length); i < size; i++) history.push(fills[i - before.length]);
    const stillOpen: PaperOrder[] = [];
    for (const o of this.state.open) {
      const kept = open.get(o.clientOrderId);
      if (kept !== undefined) stillOpen.push(kept);
    }
    const st = this.state;
    this.state = { version: 1, cash, seq: st.seq, accepted: st.accepted, positions, open: stillOpen, fills: history, known: st.known };
    return events;
  }

  private emitAll(events: readonly BrokerEvent[]): void {
    for (const e of events) this.emit(e.type === 'fill' ? { ...e, fill: { ...e.fill } } : e);
  }

  /** Working legs that end with `o`: an entry's exits, or an exit's siblings. */
  private dependents(o: PaperOrder, among: readonly PaperOrder[] = this.state.open): PaperOrder[] {
    if (!o.groupId) return [];
    if (isExit(o.role)) return among.filter((x) => x.groupId === o.groupId && isExit(x.role) && x.clientOrderId !== o.clientOrderId);
    return among.filter((x) => x.groupId === o.clientOrderId && isExit(x.role));
  }

  private working(order: OrderRecord, brokerOrderId: string, now: number, activeFrom: number | false | undefined): PaperOrder {
    const tif: TimeInForce = order.tif ?? 'day';
    // Optional fields assigned, not spread: this runs for every order a backtest sends.
    const o: PaperOrder = {
      clientOrderId: order.clientOrderId,
      brokerOrderId,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      type: order.type,
      filledQty: 0,
      state: 'submitted',
      barStart: order.barStart,
      acceptedAt: now,
    };
    if (order.limitPrice !== undefined) o.limitPrice = order.limitPrice;
    if (order.stopPrice !== undefined) o.stopPrice = order.stopPrice;
    if (order.trailAmount !== undefined) o.trailAmount = order.trailAmount;
    if (order.trailPercent !== undefined) o.trailPercent = order.trailPercent;
    if (order.tif !== undefined) o.tif = order.tif;
    if (order.outsideRth) o.outsideRth = true;
    if (order.groupId !== undefined) o.groupId = order.groupId;
    if (order.role !== undefined) o.role = order.role;
    if (tif === 'day' && this.calendar) o.expiresAt = dayOrderExpiry(this.calendar, now, order.outsideRth === true);
    if (activeFrom !== undefined) o.activeFrom = activeFrom;
    return o;
  }

  private persist(): Promise<void> {
    // The state object is replaced, never mutated, so the value handed to put() cannot change under it.
    return this.checkpoints.put(this.opts.key, this.state);
  }

  private emit(e: BrokerEvent): void {
    for (const cb of this.listeners) cb(e);
  }
}

/** A copy of `o` without `key`. */
function withoutKey<T>(o: Record<string, T>, key: string): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k in o) if (k !== key) out[k] = o[k];
  return out;
}

/** Takes `o` out of this step's working orders and announces its cancel; a no-op when it already left. */
function cancelIn(open: Map<string, PaperOrder>, events: BrokerEvent[], time: number, o: PaperOrder, reason: string): void {
  if (!open.delete(o.clientOrderId)) return;
  events.push({ type: 'cancelled', clientOrderId: o.clientOrderId, time, reason });
}

function paperOrderProblem(order: OrderRecord): string | undefined {
  if (!Number.isSafeInteger(order.qty) || order.qty <= 0) return `qty must be a positive whole number, got ${order.qty}`;
  if (order.side !== 'buy' && order.side !== 'sell') return `side must be buy or sell, got ${String(order.side)}`;
  const p = orderSpecProblem(order as unknown as Record<string, unknown>, '');
  return p ? `${p.field}: ${p.message}` : undefined;
}
