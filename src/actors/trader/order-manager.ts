/**
 * The order manager turns signals into orders and keeps the journal, the positions and the broker
 * in agreement.
 *
 * Lifecycle: `start()` replays the journal's fills into the positions, subscribes to the broker's
 * events, restores the kill switch, and reconciles. Then `onBar` (broker fills, last prices) and
 * `decide` (one signal) for each bar, and `kill`/`resume` from the operator.
 *
 * Crash-safety rests on three rules:
 * 1. An order is journaled as `pending`, and the put has resolved (durable), before broker.submit
 *    is called. A crash before the put leaves nothing to send; after it, reconcile finds it.
 * 2. The client order id is deterministic (client-order-id.ts), the broker keys orders by it and
 *    its submit is idempotent. So a pending order the broker has is adopted, one it lacks is sent
 *    now, once, and a replayed bar yields an id the journal already holds: a duplicate, not sent.
 * 3. Fills are keyed by execId. Every fill the broker reports (event or executions listing) is
 *    applied to the journal once, whenever it arrives; positions are derived from journal fills.
 *
 * Journal writes after the pending put (submitted, fills, cancels) are not awaited on the hot path;
 * they apply in call order, and `idle()` waits for them. Losing one to a crash loses nothing:
 * the broker still has the fact, and reconcile brings it back.
 */
import type { Bar } from '../../market/bar.ts';
import type { Clock } from '../../market/clock.ts';
import type { CheckpointStore, OrderFill, OrderJournal, OrderRecord } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, BrokerError } from './broker.ts';
import { clientOrderId } from './client-order-id.ts';
import { PositionLedger, type LedgerPosition, type PnlToday } from './ledger.ts';
import type { Decision, KillReport, OrderCounters, Refusal } from './decisions.ts';
import { KillSwitch, flattenOrders } from './kill-switch.ts';
import { OrderBook } from './order-book.ts';
import { applyFill, isFinal, signedRemaining, transition, type TraderLog } from './orders.ts';
import { reconcileOrders, type ReconcileHost, type ReconcileReport } from './reconcile.ts';
import { type RiskEngine, type RiskOrder, type RiskRule, type RiskState, RISK_RULES } from './risk.ts';
import { bracketRecords, bracketWorstLoss, exitsOf, isExitRole, openWorstLoss, protectedQty } from './brackets.ts';
import type { ExitSettings } from './order-types.ts';
import { TraderError } from './protocol.ts';
import { sizeSignal } from './sizing.ts';
import type { Signal } from './strategies/contract.ts';

export type { Decision, KillReport, OrderCounters, Refusal } from './decisions.ts';
export type { ReconcileReport } from './reconcile.ts';

export interface OrderManagerOptions {
  journal: OrderJournal;
  broker: Broker;
  risk: RiskEngine;
  clock: Clock;
  log: TraderLog;
  /** Keeps the kill switch across restarts when given. */
  checkpoints?: CheckpointStore;
  /** Checkpoint key of the kill switch; default 'trader-kill-switch'. */
  killSwitchKey?: string;
  /** Called once per new fill, after it is applied (notifications). Must not throw or block. */
  onFill?: (record: OrderRecord, fill: OrderFill) => void;
}

const NO_ORDER: Decision = Object.freeze({ action: 'none' });
const RECENT_REFUSALS = 50;

export class OrderManager {
  readonly broker: Broker;
  readonly risk: RiskEngine;
  private readonly journal: OrderJournal;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  private readonly killSwitch: KillSwitch;
  private readonly onFill?: (record: OrderRecord, fill: OrderFill) => void;

  private readonly ledger = new PositionLedger();
  private readonly book: OrderBook;
  private readonly prices = new Map<string, number>();
  private readonly riskState: RiskState;
  private readonly sending = new Set<Promise<unknown>>();
  private readonly refusals: Refusal[] = [];
  private reconciling: Promise<ReconcileReport> | undefined;
  private started = false;
  readonly counters: OrderCounters = {
    submitted: 0,
    rejected: 0,
    unsent: 0,
    duplicates: 0,
    fills: 0,
    refused: Object.fromEntries(RISK_RULES.map((r) => [r, 0])) as Record<RiskRule, number>,
    unknownEvents: 0,
    journalErrors: 0,
  };

  constructor(opts: OrderManagerOptions) {
    this.journal = opts.journal;
    this.broker = opts.broker;
    this.risk = opts.risk;
    this.clock = opts.clock;
    this.log = opts.log;
    this.onFill = opts.onFill;
    this.killSwitch = new KillSwitch(opts.risk, opts.log, opts.checkpoints, opts.killSwitchKey ?? 'trader-kill-switch');
    this.book = new OrderBook(opts.journal, (clientOrderId, err) => {
      this.counters.journalErrors++;
      this.log.error({ clientOrderId, err }, 'journal write failed; reconcile will restore the order from the broker');
    });
    this.riskState = { positions: this.ledger.quantities, openQty: this.book.openQty, prices: this.prices, pnlToday: 0, now: 0 };
  }

  /** Rebuilds positions from the journal, listens to the broker, restores the kill switch, and reconciles. */
  async start(): Promise<ReconcileReport> {
    if (this.started) throw new TraderError('TRADER_WIRING', 'OrderManager.start() was already called');
    this.started = true;
    this.ledger.setNow(this.clock.now());
    // One journal serves every broker; this manager owns only its own broker's orders.
    const records = this.journal.all().filter((r) => r.broker === this.broker.kind);
    const fills: Array<{ record: OrderRecord; fill: OrderFill }> = [];
    for (const record of records) {
      if (!isFinal(record.state)) this.book.open.set(record.clientOrderId, record);
      for (const fill of record.fills) fills.push({ record, fill });
    }
    fills.sort((a, b) => a.fill.time - b.fill.time || (a.fill.execId < b.fill.execId ? -1 : 1));
    for (const { record, fill } of fills) this.ledger.applyFill(record.symbol, record.side, fill.qty, fill.price, fill.commission, fill.time);
    for (const symbol of new Set([...this.book.open.values()].map((r) => r.symbol))) this.book.refreshOpenQty(symbol);

    this.killSwitch.restore();
    this.broker.onEvent((e) => this.onBrokerEvent(e));
    return this.reconcile();
  }

  /** Lets the broker fill what is due at this bar's open, then marks the bar's close as the symbol's last price. */
  async onBar(bar: Bar): Promise<void> {
    if (this.broker.onBar) await this.broker.onBar(bar);
    this.prices.set(bar.symbol, bar.close);
  }

  /**
   * Turns one signal into at most one order, or one bracket: sizes it, names it, attaches the
   * protective exits to an entry (the signal's, else `at.exits`), checks risk with the bracket's
   * worst case, journals every leg, sends. A reducing order replaces the symbol's working exits.
   */
  async decide(signal: Signal, at: { strategy: string; barStart: number; index: number; exits?: ExitSettings }): Promise<Decision> {
    const symbol = signal.symbol;
    const position = this.ledger.qty(symbol);
    const openQty = this.book.openQty.get(symbol) ?? 0;
    const order = sizeSignal(signal, position, openQty);
    if (!order) return NO_ORDER;
    const id = clientOrderId(at.strategy, symbol, at.barStart, at.index);
    if (this.book.known(id)) {
      this.counters.duplicates++;
      return { action: 'duplicate', clientOrderId: id };
    }
    const record = this.newRecord(id, at.strategy, order, at.barStart, signal.reason);
    const covered = protectedQty(position + openQty, order.side, order.qty);
    const exits = signal.exits === null ? undefined : (signal.exits ?? at.exits);
    const legs = bracketRecords(record, exits, covered, this.prices.get(symbol));
    const worstLoss = legs.length > 1 ? bracketWorstLoss(legs, this.prices.get(symbol)) : undefined;
    const verdict = this.checkRisk(worstLoss === undefined ? order : { ...order, worstLoss });
    if (!verdict.ok) return this.refused(id, symbol, verdict.rule, verdict.reason);
    if (covered < order.qty) await this.replaceExits(symbol, id);
    return legs.length > 1 ? this.sendGroup(legs) : this.send(record);
  }

  /**
   * Settles every order the journal has not closed against what the broker knows. Safe to run
   * again at any time (after a broker reconnect, for example); concurrent calls share one run.
   */
  reconcile(): Promise<ReconcileReport> {
    this.reconciling ??= reconcileOrders(this.reconcileHost()).finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /**
   * Takes over orders another process journaled and sent (cluster mode: the symbol's previous
   * owner): each one this journal lacks is journaled here as it was placed, then a reconcile
   * settles it against the broker (working: adopted; filled: its fills applied).
   */
  async adopt(records: readonly OrderRecord[]): Promise<ReconcileReport> {
    // A run already under way may have listed the open orders before these arrive.
    await this.reconciling?.catch(() => undefined);
    for (const r of records) {
      if (r.broker !== this.broker.kind || this.book.known(r.clientOrderId)) continue;
      await this.journal.put(r);
      this.book.update(r, false);
    }
    return this.reconcile();
  }

  /** Engages the kill switch, cancels every open order, and with `flatten` sends orders that close every position. */
  async kill(opts: { flatten?: boolean } = {}): Promise<KillReport> {
    await this.killSwitch.engage(this.clock.now(), opts.flatten === true);
    // Orders already on their way are let through first, so none slips past the cancel below.
    await Promise.allSettled([...this.sending]);
    const report: KillReport = { cancelled: [], flatten: [], errors: [] };
    for (const record of [...this.book.open.values()]) {
      // A second kill must not cancel the first one's flatten orders (that left positions open).
      if (record.strategy === 'flatten') continue;
      try {
        await this.broker.cancel(record.clientOrderId);
        // A pending order may never have reached the broker, which then has nothing to cancel or announce.
        const current = this.book.open.get(record.clientOrderId);
        if (current && current.state === 'pending') {
          this.book.update(transition(current, 'cancelled', this.clock.now(), { rejectReason: 'kill switch engaged before it was sent' }));
        }
        report.cancelled.push(record.clientOrderId);
      } catch (err) {
        report.errors.push(`cancel ${record.clientOrderId}: ${(err as Error).message}`);
        this.log.error({ clientOrderId: record.clientOrderId, err }, 'cancel failed during kill');
      }
    }
    if (opts.flatten) {
      const at = this.clock.now();
      for (const order of flattenOrders(this.remainingToFlatten())) {
        const symbol = order.symbol;
        const id = clientOrderId('flatten', symbol, at, 0);
        if (this.book.known(id)) {
          report.flatten.push({ action: 'duplicate', clientOrderId: id });
          continue;
        }
        const verdict = this.checkRisk(order);
        if (!verdict.ok) {
          report.flatten.push(this.refused(id, symbol, verdict.rule, verdict.reason));
          continue;
        }
        report.flatten.push(await this.send(this.newRecord(id, 'flatten', order, at, 'kill switch: flatten')));
      }
    }
    await this.idle();
    return report;
  }

  async resume(): Promise<void> {
    await this.killSwitch.release();
  }

  /** Resolves once every journal write issued so far is durable. */
  async idle(): Promise<void> {
    const writes = this.book.writes;
    while (writes.size > 0 || this.sending.size > 0) await Promise.allSettled([...writes, ...this.sending]);
  }

  position(symbol: string): number {
    return this.ledger.qty(symbol);
  }

  positions(): LedgerPosition[] {
    return this.ledger.positions();
  }

  lastPrice(symbol: string): number | undefined {
    return this.prices.get(symbol);
  }

  openOrders(): OrderRecord[] {
    return [...this.book.open.values()];
  }

  pnlToday(): number {
    this.ledger.setNow(this.clock.now());
    return this.ledger.pnlToday(this.prices);
  }

  pnlTodayParts(): PnlToday {
    this.ledger.setNow(this.clock.now());
    return this.ledger.pnlTodayParts(this.prices);
  }

  recentRefusals(): Refusal[] {
    return [...this.refusals];
  }

  // ---------------------------------------------------------------- internals

  private checkRisk(order: RiskOrder) {
    const now = this.clock.now();
    this.ledger.setNow(now);
    this.riskState.now = now;
    this.riskState.pnlToday = this.ledger.pnlToday(this.prices);
    this.riskState.openWorstLoss = openWorstLoss(this.book.open.values(), (id) => this.book.lookup(id), this.prices);
    return this.risk.check(order, this.riskState);
  }

  private refused(id: string, symbol: string, rule: RiskRule, reason: string): Decision {
    this.counters.refused[rule]++;
    this.refusals.push({ clientOrderId: id, symbol, rule, reason, at: this.clock.now() });
    if (this.refusals.length > RECENT_REFUSALS) this.refusals.shift();
    return { action: 'refused', clientOrderId: id, rule, reason };
  }

  private newRecord(id: string, strategy: string, order: RiskOrder, barStart: number, reason: string): OrderRecord {
    const now = this.clock.now();
    return {
      clientOrderId: id,
      strategy,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      type: order.type,
      ...(order.limitPrice !== undefined ? { limitPrice: order.limitPrice } : {}),
      ...(order.stopPrice !== undefined ? { stopPrice: order.stopPrice } : {}),
      ...(order.trailAmount !== undefined ? { trailAmount: order.trailAmount } : {}),
      ...(order.trailPercent !== undefined ? { trailPercent: order.trailPercent } : {}),
      tif: order.tif ?? 'day',
      ...(order.outsideRth ? { outsideRth: true } : {}),
      broker: this.broker.kind,
      state: 'pending',
      filledQty: 0,
      avgFillPrice: 0,
      commission: 0,
      fills: [],
      barStart,
      reason,
      createdAt: now,
      updatedAt: now,
    };
  }

  private send(record: OrderRecord): Promise<Decision> {
    const p = this.journalThenSubmit(record);
    this.sending.add(p);
    void p.finally(() => this.sending.delete(p));
    return p;
  }

  private async journalThenSubmit(record: OrderRecord): Promise<Decision> {
    this.book.update(record, false);
    try {
      // The one awaited write: after this the order exists on disk and cannot be forgotten.
      await this.journal.put(record);
    } catch (err) {
      // Not on disk means not sent: forget it, so it does not hold up the symbol's next order.
      this.book.forget(record);
      this.counters.journalErrors++;
      throw err;
    }
    return this.submit(record);
  }

  /** Sends a journaled pending order and records the broker's answer. */
  private async submit(record: OrderRecord): Promise<Decision> {
    const id = record.clientOrderId;
    this.risk.recordOrder(this.clock.now());
    let brokerOrderId: string;
    try {
      ({ brokerOrderId } = await this.broker.submit(record));
    } catch (err) {
      const current = this.book.open.get(id);
      if (err instanceof BrokerError && err.code === 'BROKER_REJECTED') {
        this.counters.rejected++;
        if (current && current.state === 'pending') this.book.update(transition(current, 'rejected', this.clock.now(), { rejectReason: err.message }));
        this.log.warn({ clientOrderId: id, reason: err.message }, 'broker rejected the order');
        return { action: 'rejected', clientOrderId: id, reason: err.message };
      }
      this.counters.unsent++;
      this.log.error({ clientOrderId: id, err }, 'broker did not answer the submit; the order stays pending until reconciled');
      return { action: 'unsent', clientOrderId: id, reason: (err as Error).message };
    }
    this.counters.submitted++;
    this.markSubmitted(id, brokerOrderId);
    this.log.info(
      { event: 'order', client_order_id: id, broker_order_id: brokerOrderId, symbol: record.symbol, side: record.side, qty: record.qty, type: record.type, strategy: record.strategy },
      `order ${record.side} ${record.qty} ${record.symbol} ${record.type}${record.limitPrice !== undefined ? ` ${record.limitPrice}` : ''} sent (${record.reason})`,
    );
    return { action: 'submitted', clientOrderId: id, brokerOrderId };
  }

  private sendGroup(legs: OrderRecord[]): Promise<Decision> {
    const p = this.journalThenSubmitGroup(legs);
    this.sending.add(p);
    void p.finally(() => this.sending.delete(p));
    return p;
  }

  private async journalThenSubmitGroup(legs: OrderRecord[]): Promise<Decision> {
    for (const r of legs) this.book.update(r, false);
    try {
      // Exits first, the entry last: the entry's write commits the bracket. A crash in between
      // leaves exits without an entry, which reconcile closes without sending.
      for (const r of [...legs.slice(1), legs[0]]) await this.journal.put(r);
    } catch (err) {
      for (const r of legs) this.book.forget(r);
      this.counters.journalErrors++;
      throw err;
    }
    return this.submitGroup(legs);
  }

  /** Sends a bracket's journaled pending legs (entry first when it is among them) as one group. */
  private async submitGroup(legs: OrderRecord[]): Promise<Decision> {
    const id = legs[0].clientOrderId;
    this.risk.recordOrder(this.clock.now());
    let acks: Array<{ clientOrderId: string; brokerOrderId: string }>;
    try {
      if (!this.broker.submitGroup) throw new BrokerError('BROKER_REJECTED', `the ${this.broker.kind} broker takes no brackets`);
      acks = await this.broker.submitGroup(legs);
    } catch (err) {
      if (err instanceof BrokerError && err.code === 'BROKER_REJECTED') {
        this.counters.rejected++;
        for (const leg of legs) {
          const current = this.book.open.get(leg.clientOrderId);
          if (current && current.state === 'pending') this.book.update(transition(current, 'rejected', this.clock.now(), { rejectReason: err.message }));
        }
        this.log.warn({ clientOrderId: id, reason: err.message }, 'broker rejected the bracket');
        return { action: 'rejected', clientOrderId: id, reason: err.message };
      }
      this.counters.unsent++;
      this.log.error({ clientOrderId: id, err }, 'broker did not answer the bracket; its legs stay pending until reconciled');
      return { action: 'unsent', clientOrderId: id, reason: (err as Error).message };
    }
    this.counters.submitted += acks.length;
    for (const a of acks) this.markSubmitted(a.clientOrderId, a.brokerOrderId);
    return { action: 'submitted', clientOrderId: id, brokerOrderId: acks.find((a) => a.clientOrderId === id)?.brokerOrderId ?? acks[0]?.brokerOrderId ?? '' };
  }

  /** Cancels the working exits of `symbol` before `byId`, a strategy's own reducing order, is sent. */
  private async replaceExits(symbol: string, byId: string): Promise<void> {
    for (const exit of exitsOf(this.book.open.values(), symbol)) {
      this.log.info({ clientOrderId: exit.clientOrderId, by: byId }, 'a strategy order reduces the position: its protective exit is cancelled');
      await this.cancelLeg(exit, `replaced by ${byId}, which reduces the position`);
    }
  }

  /** Cancels one leg: at the broker when it was sent, in the journal alone when it never was. */
  private async cancelLeg(record: OrderRecord, reason: string): Promise<void> {
    try {
      if (record.state !== 'pending') await this.broker.cancel(record.clientOrderId);
    } catch (err) {
      this.log.error({ clientOrderId: record.clientOrderId, err }, 'cancel of a bracket leg failed');
      return;
    }
    const current = this.book.open.get(record.clientOrderId);
    if (current && current.state === 'pending') this.book.update(transition(current, 'cancelled', this.clock.now(), { rejectReason: reason }));
  }

  /**
   * Keeps a bracket consistent whatever the broker did: when an exit fills its siblings are
   * cancelled, and when an entry ends unfilled its exits are. Brokers do this themselves (paper in
   * the same step, IBKR by OCA and parent/child); this covers an event that was lost.
   */
  private settleGroup(record: OrderRecord): void {
    if (!record.groupId) return;
    const exitFilled = isExitRole(record.role) && record.filledQty > 0;
    const entryDead = record.role === 'entry' && isFinal(record.state) && record.filledQty === 0;
    if (!exitFilled && !entryDead) return;
    for (const leg of [...this.book.open.values()]) {
      if (leg.groupId !== record.groupId || leg.clientOrderId === record.clientOrderId || !isExitRole(leg.role)) continue;
      const p = this.cancelLeg(leg, exitFilled ? `one-cancels-other: ${record.clientOrderId} filled` : `its entry ${record.groupId} ended unfilled`);
      this.sending.add(p);
      void p.finally(() => this.sending.delete(p));
    }
  }

  private markSubmitted(id: string, brokerOrderId: string): void {
    const current = this.book.open.get(id) ?? this.book.closed.get(id);
    if (!current) return;
    if (current.state === 'pending') this.book.update(transition(current, 'submitted', this.clock.now(), { brokerOrderId }));
    else if (current.brokerOrderId === undefined) this.book.update({ ...current, brokerOrderId, updatedAt: this.clock.now() });
  }

  private onBrokerEvent(e: BrokerEvent): void {
    try {
      const record = this.book.lookup(e.clientOrderId);
      if (!record) {
        this.counters.unknownEvents++;
        this.log.warn({ event: e.type, clientOrderId: e.clientOrderId }, 'broker event for an order not in the journal');
        return;
      }
      switch (e.type) {
        case 'accepted':
          this.markSubmitted(e.clientOrderId, e.brokerOrderId);
          return;
        case 'fill':
          this.fill(record, e.fill);
          break;
        case 'cancelled':
          if (!isFinal(record.state)) this.book.update(transition(record, 'cancelled', e.time, e.reason ? { rejectReason: e.reason } : undefined));
          break;
        case 'rejected':
          if (isFinal(record.state)) return;
          // After a partial fill the machine has no rejected; the order simply stopped working.
          this.book.update(transition(record, record.state === 'partially_filled' ? 'cancelled' : 'rejected', e.time, { rejectReason: e.reason }));
          break;
      }
      const now = this.book.lookup(e.clientOrderId);
      if (now) this.settleGroup(now);
    } catch (err) {
      this.log.error({ event: e.type, clientOrderId: e.clientOrderId, err }, 'broker event could not be applied');
    }
  }

  /** Applies a broker fill to its order once; returns whether it was new. */
  private fill(record: OrderRecord, f: BrokerFill): boolean {
    const fill: OrderFill = { execId: f.execId, qty: f.qty, price: f.price, time: f.time, commission: f.commission };
    const result = applyFill(record, fill, this.clock.now());
    if (!result.applied) return false;
    if (result.record.brokerOrderId === undefined && f.brokerOrderId) result.record.brokerOrderId = f.brokerOrderId;
    this.counters.fills++;
    this.ledger.setNow(this.clock.now());
    this.ledger.applyFill(record.symbol, record.side, fill.qty, fill.price, fill.commission, fill.time);
    if (result.anomaly)
      this.log.warn({ clientOrderId: record.clientOrderId, execId: fill.execId, anomaly: result.anomaly, state: record.state }, "fill outside the order's normal life; recorded anyway");
    this.book.update(result.record);
    this.log.info(
      {
        event: 'fill',
        client_order_id: record.clientOrderId,
        exec_id: fill.execId,
        symbol: record.symbol,
        side: record.side,
        qty: fill.qty,
        price: fill.price,
        commission: fill.commission,
        position: this.ledger.qty(record.symbol),
      },
      `fill ${record.side} ${fill.qty} ${record.symbol} @ ${fill.price}`,
    );
    try {
      this.onFill?.(result.record, fill);
    } catch {
      /* notifications never hold up the trader */
    }
    return true;
  }

  /** Signed shares per symbol that working flatten orders do not already close. */
  private remainingToFlatten(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const [symbol, held] of this.ledger.quantities) {
      let qty = held;
      for (const r of this.book.open.values()) if (r.symbol === symbol && r.strategy === 'flatten') qty += signedRemaining(r);
      if (qty !== 0) out.push([symbol, qty]);
    }
    return out;
  }

  private reconcileHost(): ReconcileHost {
    return {
      broker: this.broker,
      book: this.book,
      clock: this.clock,
      log: this.log,
      killed: () => this.risk.killed,
      quantities: () => this.ledger.quantities,
      position: (symbol) => this.ledger.qty(symbol),
      fill: (record, f) => this.fill(record, f),
      markSubmitted: (id, brokerOrderId) => this.markSubmitted(id, brokerOrderId),
      resubmit: async (record) => {
        const sent = this.submit(record);
        this.sending.add(sent);
        void sent.finally(() => this.sending.delete(sent));
        return (await sent).action === 'submitted';
      },
      resubmitGroup: async (legs) => {
        const sent = this.submitGroup(legs);
        this.sending.add(sent);
        void sent.finally(() => this.sending.delete(sent));
        return (await sent).action === 'submitted';
      },
      idle: () => this.idle(),
    };
  }
}
