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
import type { CheckpointStore, OrderFill, OrderRecord } from '../../storage/types.ts';
import { clientOrderId } from './client-order-id.ts';
import type { LedgerPosition, PnlToday } from './ledger.ts';
import type { Decision, KillReport, Refusal } from './decisions.ts';
import { KillSwitch, flattenOrders } from './kill-switch.ts';
import { isFinal, signedRemaining, transition } from './orders.ts';
import { OrderPipeline, type OrderPipelineOptions } from './order-pipeline.ts';
import { reconcileOrders, type ReconcileHost, type ReconcileReport } from './reconcile.ts';
import type { RiskOrder, RiskRule, RiskState } from './risk.ts';
import { bracketRecords, bracketWorstLoss, openWorstLoss, protectedQty } from './brackets.ts';
import type { ExitSettings } from './order-types.ts';
import { TraderError } from './protocol.ts';
import { sizeSignal } from './sizing.ts';
import type { Signal } from './strategies/contract.ts';

export type { Decision, KillReport, OrderCounters, Refusal } from './decisions.ts';
export type { ReconcileReport } from './reconcile.ts';

export interface OrderManagerOptions extends OrderPipelineOptions {
  /** Keeps the kill switch across restarts when given. */
  checkpoints?: CheckpointStore;
  /** Checkpoint key of the kill switch; default 'trader-kill-switch'. */
  killSwitchKey?: string;
}

const NO_ORDER: Decision = Object.freeze({ action: 'none' });
const RECENT_REFUSALS = 50;

export class OrderManager extends OrderPipeline {
  private readonly killSwitch: KillSwitch;
  private readonly riskState: RiskState;
  private readonly refusals: Refusal[] = [];
  private reconciling: Promise<ReconcileReport> | undefined;
  private started = false;

  constructor(opts: OrderManagerOptions) {
    super(opts);
    this.killSwitch = new KillSwitch(opts.risk, opts.log, opts.checkpoints, opts.killSwitchKey ?? 'trader-kill-switch');
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
    await this.step(bar);
  }

  /**
   * onBar's work, without a promise when the broker has nothing due for the bar (its `barDue`
   * says so) or does it on return (`onBarNow`): then it is done on return, and undefined is
   * returned. The trading loop calls this.
   */
  step(bar: Bar): Promise<void> | undefined {
    const broker = this.broker;
    if (broker.onBar !== undefined && (broker.barDue === undefined || broker.barDue(bar))) {
      if (broker.onBarNow !== undefined) {
        // A broker durable on return (paper in a backtest): its fills are applied when this returns.
        broker.onBarNow(bar);
        this.prices.set(bar.symbol, bar.close);
        return undefined;
      }
      return broker.onBar(bar).then(() => {
        this.prices.set(bar.symbol, bar.close);
      });
    }
    this.prices.set(bar.symbol, bar.close);
    return undefined;
  }

  /**
   * Turns one signal into at most one order, or one bracket: sizes it, names it, attaches the
   * protective exits to an entry (the signal's, else `at.exits`), checks risk with the bracket's
   * worst case, journals every leg, sends. A reducing order replaces the symbol's working exits.
   */
  async decide(signal: Signal, at: { strategy: string; barStart: number; index: number; exits?: ExitSettings }): Promise<Decision> {
    return this.decideNow(signal, at.strategy, at.barStart, at.index, at.exits);
  }

  /**
   * decide's work, answered at once when no order results (the target is met, a duplicate, a
   * refusal) and as a promise when an order goes to the journal and the broker.
   */
  decideNow(signal: Signal, strategy: string, barStart: number, index: number, defaultExits?: ExitSettings): Decision | Promise<Decision> {
    const symbol = signal.symbol;
    const position = this.ledger.qty(symbol);
    const openQty = this.book.openQty.get(symbol) ?? 0;
    const order = sizeSignal(signal, position, openQty);
    if (!order) return NO_ORDER;
    const id = clientOrderId(strategy, symbol, barStart, index);
    if (this.book.known(id)) {
      this.counters.duplicates++;
      return { action: 'duplicate', clientOrderId: id };
    }
    const record = this.newRecord(id, strategy, order, barStart, signal.reason);
    const covered = protectedQty(position + openQty, order.side, order.qty);
    const exits = signal.exits === null ? undefined : (signal.exits ?? defaultExits);
    const legs = bracketRecords(record, exits, covered, this.prices.get(symbol));
    const worstLoss = legs.length > 1 ? bracketWorstLoss(legs, this.prices.get(symbol)) : undefined;
    const verdict = this.checkRisk(worstLoss === undefined ? order : { ...order, worstLoss });
    if (!verdict.ok) return this.refused(id, symbol, verdict.rule, verdict.reason);
    if (covered < order.qty) {
      const replacing = this.replaceExits(symbol, id);
      if (replacing !== undefined) return replacing.then(() => (legs.length > 1 ? this.sendGroup(legs) : this.send(record)));
    }
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

  /**
   * Cancels every working order but the kill switch's flatten orders (a stopped session's), and
   * resolves once each has ended. Orders still on their way to the broker are let through first:
   * cancelling one the broker has not got yet would be a no-op there, and it would then work on.
   * One that never reached the broker is cancelled in the journal alone.
   */
  async cancelWorking(): Promise<{ cancelled: string[]; errors: string[] }> {
    await this.settleSending();
    const cancelled: string[] = [];
    const errors: string[] = [];
    for (const record of [...this.book.open.values()]) {
      if (record.strategy === 'flatten' || !this.book.open.has(record.clientOrderId)) continue;
      try {
        await this.broker.cancel(record.clientOrderId);
        const current = this.book.open.get(record.clientOrderId);
        if (current && current.state === 'pending') this.book.update(transition(current, 'cancelled', this.clock.now(), { rejectReason: 'the session stopped before it was sent' }));
        cancelled.push(record.clientOrderId);
      } catch (err) {
        errors.push(`${record.clientOrderId}: ${(err as Error).message}`);
      }
    }
    await this.idle();
    return { cancelled, errors };
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
    // Optional fields assigned, not spread: this runs for every order a backtest sends.
    const record: OrderRecord = {
      clientOrderId: id,
      strategy,
      symbol: order.symbol,
      side: order.side,
      qty: order.qty,
      type: order.type,
      tif: order.tif ?? 'day',
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
    if (order.limitPrice !== undefined) record.limitPrice = order.limitPrice;
    if (order.stopPrice !== undefined) record.stopPrice = order.stopPrice;
    if (order.trailAmount !== undefined) record.trailAmount = order.trailAmount;
    if (order.trailPercent !== undefined) record.trailPercent = order.trailPercent;
    if (order.outsideRth) record.outsideRth = true;
    return record;
  }

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
      resubmit: async (record) => (await this.track(this.submit(record))).action === 'submitted',
      resubmitGroup: async (legs) => (await this.track(this.submitGroup(legs))).action === 'submitted',
      idle: () => this.idle(),
    };
  }
}
