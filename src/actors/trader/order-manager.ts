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
import type { CheckpointStore, OrderFill, OrderJournal, OrderRecord, OrderSide, OrderType } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, BrokerError } from './broker.ts';
import { clientOrderId } from './client-order-id.ts';
import { PositionLedger, type LedgerPosition, type PnlToday } from './ledger.ts';
import { applyFill, isFinal, signedRemaining, transition, type TraderLog } from './orders.ts';
import { type RiskEngine, type RiskOrder, type RiskRule, type RiskState, RISK_RULES } from './risk.ts';
import type { Signal } from './strategy.ts';

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

export type Decision =
  /** The target is already met by the position and open orders. */
  | { action: 'none' }
  /** The journal already holds this signal's order (a bar seen again, e.g. after a restart). */
  | { action: 'duplicate'; clientOrderId: string }
  | { action: 'refused'; clientOrderId: string; rule: RiskRule; reason: string }
  | { action: 'submitted'; clientOrderId: string; brokerOrderId: string }
  /** The broker refused it; journaled as rejected. */
  | { action: 'rejected'; clientOrderId: string; reason: string }
  /** The broker did not answer; the order stays pending and the next reconcile settles it. */
  | { action: 'unsent'; clientOrderId: string; reason: string };

export interface Refusal {
  clientOrderId: string;
  symbol: string;
  rule: RiskRule;
  reason: string;
  at: number;
}

export interface ReconcileReport {
  /** Pending orders the broker already had: taken over, not sent again. */
  adopted: number;
  /** Pending orders the broker never received: sent now. */
  resubmitted: number;
  /** Fills the broker had and the journal lacked. */
  fillsApplied: number;
  /** Orders the broker no longer works and that did not fill completely. */
  closed: number;
  /** Human-readable differences found (unknown fills, position mismatches). */
  discrepancies: string[];
}

export interface KillReport {
  cancelled: string[];
  flatten: Decision[];
  errors: string[];
}

export interface OrderCounters {
  submitted: number;
  rejected: number;
  unsent: number;
  duplicates: number;
  fills: number;
  refused: Record<RiskRule, number>;
  unknownEvents: number;
  journalErrors: number;
}

const NO_ORDER: Decision = Object.freeze({ action: 'none' });
/** The strategy name the kill switch's flatten orders carry. */
const FLATTEN = 'flatten';
const RECENT_REFUSALS = 50;
const FINAL_KEPT = 10_000;

export class OrderManager {
  readonly broker: Broker;
  readonly risk: RiskEngine;
  private readonly journal: OrderJournal;
  private readonly clock: Clock;
  private readonly log: TraderLog;
  private readonly checkpoints?: CheckpointStore;
  private readonly killSwitchKey: string;
  private readonly onFill?: (record: OrderRecord, fill: OrderFill) => void;

  private readonly ledger = new PositionLedger();
  /** Orders not final, by client order id. */
  private readonly open = new Map<string, OrderRecord>();
  /** Final orders seen by this process, newest last (bounded), so late events find them before their journal write lands. */
  private readonly closed = new Map<string, OrderRecord>();
  private readonly openQty = new Map<string, number>();
  private readonly prices = new Map<string, number>();
  private readonly riskState: RiskState;
  private readonly writes = new Set<Promise<void>>();
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
    this.checkpoints = opts.checkpoints;
    this.killSwitchKey = opts.killSwitchKey ?? 'trader-kill-switch';
    this.onFill = opts.onFill;
    this.riskState = { positions: this.ledger.quantities, openQty: this.openQty, prices: this.prices, pnlToday: 0, now: 0 };
  }

  /** Rebuilds positions from the journal, listens to the broker, restores the kill switch, and reconciles. */
  async start(): Promise<ReconcileReport> {
    if (this.started) throw Object.assign(new Error('OrderManager.start() was already called'), { code: 'TRADER_WIRING' });
    this.started = true;
    this.ledger.setNow(this.clock.now());
    // One journal serves every broker; this manager owns only its own broker's orders.
    const records = this.journal.all().filter((r) => r.broker === this.broker.kind);
    const fills: Array<{ record: OrderRecord; fill: OrderFill }> = [];
    for (const record of records) {
      if (!isFinal(record.state)) this.open.set(record.clientOrderId, record);
      for (const fill of record.fills) fills.push({ record, fill });
    }
    fills.sort((a, b) => a.fill.time - b.fill.time || (a.fill.execId < b.fill.execId ? -1 : 1));
    for (const { record, fill } of fills) this.ledger.applyFill(record.symbol, record.side, fill.qty, fill.price, fill.commission, fill.time);
    for (const symbol of new Set([...this.open.values()].map((r) => r.symbol))) this.refreshOpenQty(symbol);

    const kill = this.checkpoints?.get<{ at: number }>(this.killSwitchKey);
    if (kill) {
      this.risk.kill(kill.at);
      this.log.warn({ killedAt: kill.at }, 'kill switch was engaged before the restart; it stays engaged until resumed');
    }
    this.broker.onEvent((e) => this.onBrokerEvent(e));
    return this.reconcile();
  }

  /** Lets the broker fill what is due at this bar's open, then marks the bar's close as the symbol's last price. */
  async onBar(bar: Bar): Promise<void> {
    if (this.broker.onBar) await this.broker.onBar(bar);
    this.prices.set(bar.symbol, bar.close);
  }

  /** Turns one signal into at most one order: sizes it, names it, checks risk, journals it, sends it. */
  async decide(signal: Signal, at: { strategy: string; barStart: number; index: number }): Promise<Decision> {
    const symbol = signal.symbol;
    let side: OrderSide;
    let qty: number;
    let type: OrderType = 'market';
    let limitPrice: number | undefined;
    if (signal.kind === 'target') {
      const delta = signal.targetQty - this.ledger.qty(symbol) - (this.openQty.get(symbol) ?? 0);
      if (delta === 0) return NO_ORDER;
      side = delta > 0 ? 'buy' : 'sell';
      qty = Math.abs(delta);
    } else {
      side = signal.side;
      qty = signal.qty;
      type = signal.type;
      limitPrice = signal.type === 'limit' ? signal.limitPrice : undefined;
    }
    const id = clientOrderId(at.strategy, symbol, at.barStart, at.index);
    if (this.known(id)) {
      this.counters.duplicates++;
      return { action: 'duplicate', clientOrderId: id };
    }
    const order: RiskOrder = { symbol, side, qty, type, limitPrice };
    const verdict = this.checkRisk(order);
    if (!verdict.ok) return this.refused(id, symbol, verdict.rule, verdict.reason);
    return this.send(this.newRecord(id, at.strategy, order, at.barStart, signal.reason));
  }

  /**
   * Settles every order the journal has not closed against what the broker knows. Safe to run
   * again at any time (after a broker reconnect, for example); concurrent calls share one run.
   */
  reconcile(): Promise<ReconcileReport> {
    this.reconciling ??= this.runReconcile().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /** Engages the kill switch, cancels every open order, and with `flatten` sends orders that close every position. */
  async kill(opts: { flatten?: boolean } = {}): Promise<KillReport> {
    const now = this.clock.now();
    this.risk.kill(now);
    if (this.checkpoints) await this.checkpoints.put(this.killSwitchKey, { at: now });
    // Orders already on their way are let through first, so none slips past the cancel below.
    await Promise.allSettled([...this.sending]);
    const report: KillReport = { cancelled: [], flatten: [], errors: [] };
    for (const record of [...this.open.values()]) {
      // A second kill must not cancel the first one's flatten orders (that left positions open).
      if (record.strategy === FLATTEN) continue;
      try {
        await this.broker.cancel(record.clientOrderId);
        // A pending order may never have reached the broker, which then has nothing to cancel or announce.
        const current = this.open.get(record.clientOrderId);
        if (current && current.state === 'pending') {
          this.update(transition(current, 'cancelled', this.clock.now(), { rejectReason: 'kill switch engaged before it was sent' }));
        }
        report.cancelled.push(record.clientOrderId);
      } catch (err) {
        report.errors.push(`cancel ${record.clientOrderId}: ${(err as Error).message}`);
        this.log.error({ clientOrderId: record.clientOrderId, err }, 'cancel failed during kill');
      }
    }
    if (opts.flatten) {
      const at = this.clock.now();
      for (const [symbol, held] of [...this.ledger.quantities]) {
        // What working flatten orders already close is not sent again.
        let qty = held;
        for (const r of this.open.values()) if (r.symbol === symbol && r.strategy === FLATTEN) qty += signedRemaining(r);
        if (qty === 0) continue;
        const order: RiskOrder = { symbol, side: qty > 0 ? 'sell' : 'buy', qty: Math.abs(qty), type: 'market', flatten: true };
        const id = clientOrderId('flatten', symbol, at, 0);
        if (this.known(id)) {
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
    this.risk.resume();
    if (this.checkpoints) await this.checkpoints.delete(this.killSwitchKey);
    this.log.info({}, 'kill switch released');
  }

  /** Resolves once every journal write issued so far is durable. */
  async idle(): Promise<void> {
    while (this.writes.size > 0 || this.sending.size > 0) await Promise.allSettled([...this.writes, ...this.sending]);
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
    return [...this.open.values()];
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

  private known(id: string): boolean {
    return this.open.has(id) || this.closed.has(id) || this.journal.get(id) !== undefined;
  }

  private checkRisk(order: RiskOrder) {
    const now = this.clock.now();
    this.ledger.setNow(now);
    this.riskState.now = now;
    this.riskState.pnlToday = this.ledger.pnlToday(this.prices);
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
      ...(order.type === 'limit' ? { limitPrice: order.limitPrice } : {}),
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
    this.update(record, false);
    try {
      // The one awaited write: after this the order exists on disk and cannot be forgotten.
      await this.journal.put(record);
    } catch (err) {
      // Not on disk means not sent: forget it, so it does not hold up the symbol's next order.
      this.open.delete(record.clientOrderId);
      this.refreshOpenQty(record.symbol);
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
      const current = this.open.get(id);
      if (err instanceof BrokerError && err.code === 'BROKER_REJECTED') {
        this.counters.rejected++;
        if (current && current.state === 'pending') this.update(transition(current, 'rejected', this.clock.now(), { rejectReason: err.message }));
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

  private markSubmitted(id: string, brokerOrderId: string): void {
    const current = this.open.get(id) ?? this.closed.get(id);
    if (!current) return;
    if (current.state === 'pending') this.update(transition(current, 'submitted', this.clock.now(), { brokerOrderId }));
    else if (current.brokerOrderId === undefined) this.update({ ...current, brokerOrderId, updatedAt: this.clock.now() });
  }

  /** Puts `record` in memory now and in the journal in call order. */
  private update(record: OrderRecord, write = true): void {
    const id = record.clientOrderId;
    if (isFinal(record.state)) {
      this.open.delete(id);
      this.closed.delete(id);
      this.closed.set(id, record);
      if (this.closed.size > FINAL_KEPT) this.closed.delete(this.closed.keys().next().value!);
    } else {
      this.open.set(id, record);
    }
    this.refreshOpenQty(record.symbol);
    if (!write) return;
    const p = this.journal.put(record).catch((err: unknown) => {
      this.counters.journalErrors++;
      this.log.error({ clientOrderId: id, err }, 'journal write failed; reconcile will restore the order from the broker');
    });
    this.writes.add(p);
    void p.finally(() => this.writes.delete(p));
  }

  private refreshOpenQty(symbol: string): void {
    let sum = 0;
    for (const r of this.open.values()) if (r.symbol === symbol) sum += signedRemaining(r);
    if (sum === 0) this.openQty.delete(symbol);
    else this.openQty.set(symbol, sum);
  }

  private lookup(id: string): OrderRecord | undefined {
    return this.open.get(id) ?? this.closed.get(id) ?? this.journal.get(id);
  }

  private onBrokerEvent(e: BrokerEvent): void {
    try {
      const record = this.lookup(e.clientOrderId);
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
          return;
        case 'cancelled':
          if (!isFinal(record.state)) this.update(transition(record, 'cancelled', e.time, e.reason ? { rejectReason: e.reason } : undefined));
          return;
        case 'rejected':
          if (isFinal(record.state)) return;
          // After a partial fill the machine has no rejected; the order simply stopped working.
          this.update(transition(record, record.state === 'partially_filled' ? 'cancelled' : 'rejected', e.time, { rejectReason: e.reason }));
          return;
      }
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
    if (result.anomaly) this.log.warn({ clientOrderId: record.clientOrderId, execId: fill.execId, anomaly: result.anomaly, state: record.state }, 'fill outside the order\'s normal life; recorded anyway');
    this.update(result.record);
    this.log.info(
      { event: 'fill', client_order_id: record.clientOrderId, exec_id: fill.execId, symbol: record.symbol, side: record.side, qty: fill.qty, price: fill.price, commission: fill.commission, position: this.ledger.qty(record.symbol) },
      `fill ${record.side} ${fill.qty} ${record.symbol} @ ${fill.price}`,
    );
    try {
      this.onFill?.(result.record, fill);
    } catch {
      /* notifications never hold up the trader */
    }
    return true;
  }

  private async runReconcile(): Promise<ReconcileReport> {
    const report: ReconcileReport = { adopted: 0, resubmitted: 0, fillsApplied: 0, closed: 0, discrepancies: [] };
    const now = this.clock.now();
    const brokerOpen = new Map((await this.broker.openOrders()).map((o) => [o.clientOrderId, o]));
    let since = now - 24 * 3_600_000;
    for (const r of this.open.values()) since = Math.min(since, r.createdAt);
    const executions = await this.broker.executions(since);

    for (const f of executions) {
      const record = this.lookup(f.clientOrderId);
      if (!record) {
        report.discrepancies.push(`broker fill ${f.execId} (${f.side} ${f.qty} ${f.symbol}) belongs to no journaled order`);
        continue;
      }
      if (this.fill(record, f)) report.fillsApplied++;
    }

    for (const record of [...this.open.values()]) {
      const id = record.clientOrderId;
      const working = brokerOpen.get(id);
      if (working) {
        if (record.state === 'pending') {
          report.adopted++;
          this.markSubmitted(id, working.brokerOrderId);
        }
        continue;
      }
      if (record.state === 'pending' && record.filledQty === 0) {
        if (this.risk.killed) {
          this.update(transition(record, 'cancelled', now, { rejectReason: 'kill switch engaged; never sent' }));
          report.closed++;
          continue;
        }
        this.log.warn({ clientOrderId: id, ageMs: now - record.createdAt }, 'pending order the broker never received: sending it now');
        const sent = this.submit(record);
        this.sending.add(sent);
        void sent.finally(() => this.sending.delete(sent));
        const decision = await sent;
        if (decision.action === 'submitted') report.resubmitted++;
        continue;
      }
      // The broker has it neither working nor completely filled: it ended without telling us.
      const reason = record.filledQty > 0 ? `broker stopped working it after ${record.filledQty} of ${record.qty} filled` : 'broker no longer has the order and reports no fills';
      this.update(transition(record, 'cancelled', now, { rejectReason: reason }));
      report.closed++;
    }

    const held = await this.broker.positions();
    const symbols = new Set([...Object.keys(held), ...this.ledger.quantities.keys()]);
    for (const symbol of symbols) {
      const mine = this.ledger.qty(symbol);
      const theirs = held[symbol]?.qty ?? 0;
      if (mine !== theirs) report.discrepancies.push(`${symbol}: journal fills give ${mine} shares, broker reports ${theirs}`);
    }
    for (const d of report.discrepancies) this.log.warn({}, `reconcile: ${d}`);
    this.log.info({ ...report, discrepancies: report.discrepancies.length }, 'reconciled orders with the broker');
    await this.idle();
    return report;
  }
}
