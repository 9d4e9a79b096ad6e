/**
 * The order manager's pipeline to and from the broker: journal a pending order (awaited, durable),
 * hand it to the broker, record its answer; and apply what the broker reports afterwards (accepts,
 * fills keyed by execId, cancels, rejects), keeping a bracket's legs consistent.
 *
 * OrderManager (order-manager.ts) extends this with the decisions, the kill switch, reconciliation
 * and the queries; the crash-safety rules are stated there. Every promise on its way to the broker
 * is held in `sending` until it settles, so `settleSending()` and `idle()` can wait for them.
 */
import type { Clock } from '../../market/clock.ts';
import type { OrderFill, OrderJournal, OrderRecord } from '../../storage/types.ts';
import { type Broker, type BrokerEvent, type BrokerFill, BrokerError } from './broker.ts';
import { exitsOf, isExitRole } from './brackets.ts';
import type { Decision, OrderCounters } from './decisions.ts';
import { PositionLedger } from './ledger.ts';
import { OrderBook } from './order-book.ts';
import { applyFill, isFinal, transition, type TraderLog } from './orders.ts';
import { type RiskEngine, type RiskRule, RISK_RULES } from './risk.ts';

export interface OrderPipelineOptions {
  journal: OrderJournal;
  broker: Broker;
  risk: RiskEngine;
  clock: Clock;
  log: TraderLog;
  /** Called once per new fill, after it is applied (notifications). Must not throw or block. */
  onFill?: (record: OrderRecord, fill: OrderFill) => void;
}

export abstract class OrderPipeline {
  readonly broker: Broker;
  readonly risk: RiskEngine;
  protected readonly journal: OrderJournal;
  protected readonly clock: Clock;
  protected readonly log: TraderLog;
  protected readonly onFill?: (record: OrderRecord, fill: OrderFill) => void;
  /** Whether the log keeps info lines; the per-order lines are not put into words otherwise. */
  protected readonly infoLogged: boolean;
  protected readonly ledger = new PositionLedger();
  protected readonly book: OrderBook;
  protected readonly prices = new Map<string, number>();
  /** Sends, resubmits and leg cancels on their way to the broker. */
  protected readonly sending = new Set<Promise<unknown>>();
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

  constructor(opts: OrderPipelineOptions) {
    this.journal = opts.journal;
    this.broker = opts.broker;
    this.risk = opts.risk;
    this.clock = opts.clock;
    this.log = opts.log;
    this.onFill = opts.onFill;
    this.infoLogged = opts.log.isLevelEnabled?.('info') !== false;
    this.book = new OrderBook(opts.journal, (clientOrderId, err) => {
      this.counters.journalErrors++;
      this.log.error({ clientOrderId, err }, 'journal write failed; reconcile will restore the order from the broker');
    });
  }

  /** Resolves once every order on its way to the broker has its answer (those that start meanwhile too). */
  async settleSending(): Promise<void> {
    while (this.sending.size > 0) await Promise.allSettled([...this.sending]);
  }

  /** Holds `p` in `sending` until it settles. */
  protected track<T>(p: Promise<T>): Promise<T> {
    this.sending.add(p);
    p.then(
      () => this.sending.delete(p),
      () => this.sending.delete(p),
    );
    return p;
  }

  /**
   * Journals and sends one order. With a journal and a broker that are both durable on return
   * (putNow, submitNow: a backtest's in-memory stores and paper broker) the same steps run without
   * a promise and the decision is returned; otherwise the promise of it. A journal failure throws
   * (or rejects): the order was not sent.
   */
  protected send(record: OrderRecord): Decision | Promise<Decision> {
    const journal = this.journal;
    const broker = this.broker;
    if (journal.putNow !== undefined && broker.submitNow !== undefined) {
      this.book.update(record, false);
      try {
        journal.putNow(record);
      } catch (err) {
        this.notJournaled([record]);
        throw err;
      }
      this.risk.recordOrder(this.clock.now());
      let brokerOrderId: string;
      try {
        ({ brokerOrderId } = broker.submitNow(record));
      } catch (err) {
        return this.sendFailed([record], err, false);
      }
      return this.submitted(record, brokerOrderId);
    }
    return this.track(this.journalThenSubmit(record));
  }

  protected async journalThenSubmit(record: OrderRecord): Promise<Decision> {
    this.book.update(record, false);
    try {
      // The one awaited write: after this the order exists on disk and cannot be forgotten.
      await this.journal.put(record);
    } catch (err) {
      this.notJournaled([record]);
      throw err;
    }
    return this.submit(record);
  }

  /** Not on disk means not sent: forget the legs, so they do not hold up the symbol's next order. */
  private notJournaled(legs: readonly OrderRecord[]): void {
    for (const r of legs) this.book.forget(r);
    this.counters.journalErrors++;
  }

  /** Sends a journaled pending order and records the broker's answer. */
  protected async submit(record: OrderRecord): Promise<Decision> {
    this.risk.recordOrder(this.clock.now());
    let brokerOrderId: string;
    try {
      ({ brokerOrderId } = await this.broker.submit(record));
    } catch (err) {
      return this.sendFailed([record], err, false);
    }
    return this.submitted(record, brokerOrderId);
  }

  /**
   * The broker refused an order or a bracket's legs (rejected: pending legs become rejected), or its
   * answer is unknown (unsent: they stay pending, reconcile decides). The decision names the first leg.
   */
  private sendFailed(legs: readonly OrderRecord[], err: unknown, bracket: boolean): Decision {
    const id = legs[0].clientOrderId;
    if (err instanceof BrokerError && err.code === 'BROKER_REJECTED') {
      this.counters.rejected++;
      for (const leg of legs) {
        const current = this.book.open.get(leg.clientOrderId);
        if (current && current.state === 'pending') this.book.update(transition(current, 'rejected', this.clock.now(), { rejectReason: err.message }));
      }
      this.log.warn({ clientOrderId: id, reason: err.message }, bracket ? 'broker rejected the bracket' : 'broker rejected the order');
      return { action: 'rejected', clientOrderId: id, reason: err.message };
    }
    this.counters.unsent++;
    this.log.error(
      { clientOrderId: id, err },
      bracket ? 'broker did not answer the bracket; its legs stay pending until reconciled' : 'broker did not answer the submit; the order stays pending until reconciled',
    );
    return { action: 'unsent', clientOrderId: id, reason: (err as Error).message };
  }

  /** The broker has the order. */
  private submitted(record: OrderRecord, brokerOrderId: string): Decision {
    const id = record.clientOrderId;
    this.counters.submitted++;
    this.markSubmitted(id, brokerOrderId);
    if (this.infoLogged)
      this.log.info(
        { event: 'order', client_order_id: id, broker_order_id: brokerOrderId, symbol: record.symbol, side: record.side, qty: record.qty, type: record.type, strategy: record.strategy },
        `order ${record.side} ${record.qty} ${record.symbol} ${record.type}${record.limitPrice !== undefined ? ` ${record.limitPrice}` : ''} sent (${record.reason})`,
      );
    return { action: 'submitted', clientOrderId: id, brokerOrderId };
  }

  /** send for a bracket (journal order: exits first, the entry last), on return when both sides allow it. */
  protected sendGroup(legs: OrderRecord[]): Decision | Promise<Decision> {
    const journal = this.journal;
    const broker = this.broker;
    if (journal.putNow !== undefined && broker.submitGroupNow !== undefined) {
      for (const r of legs) this.book.update(r, false);
      try {
        for (let i = 1; i <= legs.length; i++) journal.putNow(legs[i % legs.length]);
      } catch (err) {
        this.notJournaled(legs);
        throw err;
      }
      this.risk.recordOrder(this.clock.now());
      let acks: Array<{ clientOrderId: string; brokerOrderId: string }>;
      try {
        acks = broker.submitGroupNow(legs);
      } catch (err) {
        return this.sendFailed(legs, err, true);
      }
      return this.groupSubmitted(legs, acks);
    }
    return this.track(this.journalThenSubmitGroup(legs));
  }

  protected async journalThenSubmitGroup(legs: OrderRecord[]): Promise<Decision> {
    for (const r of legs) this.book.update(r, false);
    try {
      // Exits first, the entry last: the entry's write commits the bracket. A crash in between
      // leaves exits without an entry, which reconcile closes without sending.
      for (const r of [...legs.slice(1), legs[0]]) await this.journal.put(r);
    } catch (err) {
      this.notJournaled(legs);
      throw err;
    }
    return this.submitGroup(legs);
  }

  /** Sends a bracket's journaled pending legs (entry first when it is among them) as one group. */
  protected async submitGroup(legs: OrderRecord[]): Promise<Decision> {
    this.risk.recordOrder(this.clock.now());
    let acks: Array<{ clientOrderId: string; brokerOrderId: string }>;
    try {
      if (!this.broker.submitGroup) throw new BrokerError('BROKER_REJECTED', `the ${this.broker.kind} broker takes no brackets`);
      acks = await this.broker.submitGroup(legs);
    } catch (err) {
      return this.sendFailed(legs, err, true);
    }
    return this.groupSubmitted(legs, acks);
  }

  private groupSubmitted(legs: readonly OrderRecord[], acks: ReadonlyArray<{ clientOrderId: string; brokerOrderId: string }>): Decision {
    const id = legs[0].clientOrderId;
    this.counters.submitted += acks.length;
    for (const a of acks) this.markSubmitted(a.clientOrderId, a.brokerOrderId);
    return { action: 'submitted', clientOrderId: id, brokerOrderId: acks.find((a) => a.clientOrderId === id)?.brokerOrderId ?? acks[0]?.brokerOrderId ?? '' };
  }

  /**
   * Cancels the working exits of `symbol` before `byId`, a strategy's own reducing order, is sent;
   * undefined when it has none (the order goes out at once).
   */
  protected replaceExits(symbol: string, byId: string): Promise<void> | undefined {
    const exits = exitsOf(this.book.open.values(), symbol);
    return exits.length === 0 ? undefined : this.cancelExits(exits, byId);
  }

  private async cancelExits(exits: readonly OrderRecord[], byId: string): Promise<void> {
    for (const exit of exits) {
      this.log.info({ clientOrderId: exit.clientOrderId, by: byId }, 'a strategy order reduces the position: its protective exit is cancelled');
      await this.cancelLeg(exit, `replaced by ${byId}, which reduces the position`);
    }
  }

  /** Cancels one leg: at the broker when it was sent, in the journal alone when it never was. */
  protected async cancelLeg(record: OrderRecord, reason: string): Promise<void> {
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
  protected settleGroup(record: OrderRecord): void {
    if (!record.groupId) return;
    const exitFilled = isExitRole(record.role) && record.filledQty > 0;
    const entryDead = record.role === 'entry' && isFinal(record.state) && record.filledQty === 0;
    if (!exitFilled && !entryDead) return;
    for (const leg of [...this.book.open.values()]) {
      if (leg.groupId !== record.groupId || leg.clientOrderId === record.clientOrderId || !isExitRole(leg.role)) continue;
      void this.track(this.cancelLeg(leg, exitFilled ? `one-cancels-other: ${record.clientOrderId} filled` : `its entry ${record.groupId} ended unfilled`));
    }
  }

  protected markSubmitted(id: string, brokerOrderId: string): void {
    const current = this.book.open.get(id) ?? this.book.closed.get(id);
    if (!current) return;
    if (current.state === 'pending') this.book.update(transition(current, 'submitted', this.clock.now(), { brokerOrderId }));
    else if (current.brokerOrderId === undefined) this.book.update({ ...current, brokerOrderId, updatedAt: this.clock.now() });
  }

  protected onBrokerEvent(e: BrokerEvent): void {
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
  protected fill(record: OrderRecord, f: BrokerFill): boolean {
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
    if (this.infoLogged)
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
}
