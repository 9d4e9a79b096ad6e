/**
 * Replay of a live session: the bars the arbiter handed the trader (DeliveryLog), fed again through
 * the same strategy, risk checks, order manager and paper broker, one decision per bar with its
 * reason, and beside it what the live journal holds for the same client order id.
 *
 * The strategy is warmed up, per symbol, with the cached bars just before the first replayed bar
 * (as many as feed.preload_bars, as the arbiter does at a live start): a window strategy is then in
 * the state it was live. The replay starts from the positions the live journal's fills give at the
 * first replayed bar's open (and the paper cash they leave), so a target already met live is met here too.
 */
import { nextPosition } from '../actors/trader/ledger.ts';
import { exitsFromSnake } from '../actors/trader/order-types.ts';
import type { Decision } from '../actors/trader/order-manager.ts';
import type { Signal } from '../actors/trader/strategies/contract.ts';
import { createStrategy } from '../actors/trader/strategies/registry.ts';
import type { Bar } from '../market/bar.ts';
import type { BarSize } from '../market/bar-size.ts';
import type { Storage } from '../storage/storage.ts';
import type { OrderRecord } from '../storage/types.ts';
import type { DeliveryLog, DeliveryRecord } from '../storage/delivery-log.ts';
import { type DecisionRow, runEngine } from './engine.ts';
import type { BacktestSpec } from './spec.ts';
import { BarkeepError } from '../errors.ts';

export interface ReplayRow {
  time: string;
  symbol: string;
  bar_start: string;
  rung: string;
  source: string;
  close: number;
  /** What the strategy said: one entry per signal; empty when it said nothing. */
  signals: string[];
  /** What became of each signal. */
  decisions: Array<{ action: Decision['action']; client_order_id: string | null; detail: string; live: string | null }>;
}

export interface ReplayResult {
  bars: number;
  missing: Array<{ symbol: string; start: string }>;
  rows: ReplayRow[];
  strategy: string;
  params: Record<string, unknown>;
  /** Signed shares per symbol the live journal held at the first replayed bar (the replay starts there). */
  initial_positions: Record<string, number>;
}

export class ReplayError extends BarkeepError<'REPLAY_NOTHING'> {
  constructor(message: string) {
    super('REPLAY_NOTHING', message);
  }
}

export interface ReplayInput {
  storage: Storage;
  deliveries: DeliveryLog;
  spec: Omit<BacktestSpec, 'symbols'> & { symbols: string[] | null };
  barSize: BarSize;
  warmupBars: number;
}

export async function replay(input: ReplayInput): Promise<ReplayResult> {
  const { spec, storage } = input;
  const records = input.deliveries.range(input.barSize, spec.from, spec.to, spec.symbols ? new Set(spec.symbols) : undefined);
  if (records.length === 0) {
    throw new ReplayError(
      `no ${input.barSize} bars were handed to the trader from ${new Date(spec.from).toISOString()}${spec.to < 8.64e15 ? ` to ${new Date(spec.to).toISOString()}` : ' on'}${spec.symbols ? ` for ${spec.symbols.join(', ')}` : ''}`,
    );
  }
  const symbols = spec.symbols ?? [...new Set(records.map((r) => r.symbol))].sort();
  const bars = new Map<string, Bar[]>(symbols.map((s) => [s, []]));
  const byKey = new Map<string, DeliveryRecord>();
  const missing: ReplayResult['missing'] = [];
  for (const r of records) {
    const bar = storage.bars.get(r.symbol, input.barSize, r.start);
    if (!bar) {
      missing.push({ symbol: r.symbol, start: new Date(r.start).toISOString() });
      continue;
    }
    bars.get(r.symbol)?.push(bar);
    byKey.set(`${r.symbol}|${r.start}`, r);
  }
  const warmup = new Map<string, Bar[]>();
  for (const s of symbols) {
    const first = bars.get(s)?.[0];
    if (first && input.warmupBars > 0) warmup.set(s, storage.bars.latestN(s, input.barSize, input.warmupBars, first.start - 1));
  }
  let firstStart = Infinity;
  for (const list of bars.values()) if (list.length > 0) firstStart = Math.min(firstStart, list[0].start);
  const initial = liveBook(storage.orders.all(), firstStart, spec.cash);
  const strategy = await createStrategy({ name: spec.strategy, params: spec.params, ...(spec.strategy_module ? { module: spec.strategy_module } : {}) });
  const rows: ReplayRow[] = [];
  const exits = exitsFromSnake(spec.exits);
  const run = await runEngine({
    strategy,
    symbols,
    barSize: input.barSize,
    bars,
    warmup,
    broker: { startingCash: spec.cash, slippageBps: spec.slippage_bps, commissionPerShare: spec.commission_per_share, minCommission: spec.min_commission },
    risk: spec.risk,
    // The session's protective exits and the calendar that ends day orders, as live had them.
    ...(exits ? { exits } : {}),
    calendar: spec.calendar ?? 'nyse',
    initial,
    onDecision: (d: DecisionRow) => rows.push(row(d, byKey.get(`${d.bar.symbol}|${d.bar.start}`), storage)),
  });
  // The replay's own orders settle after their bar: say how each ended.
  const final = new Map<string, OrderRecord>(run.orders.map((o) => [o.clientOrderId, o]));
  for (const r of rows) {
    for (const d of r.decisions) {
      const o = d.client_order_id ? final.get(d.client_order_id) : undefined;
      if (d.action === 'submitted' && o) d.detail = `${o.side} ${o.qty} ${o.symbol} sent; ${o.state}${o.filledQty > 0 ? ` at ${o.avgFillPrice}` : ''}`;
    }
  }
  const positions = Object.fromEntries(Object.entries(initial.positions).map(([s, p]) => [s, p.qty]));
  return { bars: records.length - missing.length, missing, rows, strategy: strategy.name, params: spec.params, initial_positions: positions };
}

/**
 * Positions (and paper cash) from the live journal's fills up to the first replayed bar's open:
 * an order decided on the bar before fills at that open, before the strategy sees the bar.
 */
function liveBook(records: readonly OrderRecord[], before: number, cash: number): { cash: number; positions: Record<string, { qty: number; avgPrice: number }> } {
  const fills = records.flatMap((r) => r.fills.filter((f) => f.time <= before).map((f) => ({ r, f })));
  fills.sort((a, b) => a.f.time - b.f.time || (a.f.execId < b.f.execId ? -1 : 1));
  const positions: Record<string, { qty: number; avgPrice: number }> = {};
  for (const { r, f } of fills) {
    const signed = r.side === 'buy' ? f.qty : -f.qty;
    positions[r.symbol] = nextPosition(positions[r.symbol], signed, f.price);
    if (r.broker === 'paper') cash -= signed * f.price + f.commission;
  }
  for (const [s, p] of Object.entries(positions)) if (p.qty === 0) delete positions[s];
  return { cash: Math.round(cash * 1e4) / 1e4, positions };
}

function describeSignal(s: Signal): string {
  return s.kind === 'target' ? `target ${s.targetQty}: ${s.reason}` : `${s.side} ${s.qty} ${s.type}${s.limitPrice !== undefined ? ` @ ${s.limitPrice}` : ''}: ${s.reason}`;
}

function describeDecision(d: Decision): string {
  switch (d.action) {
    case 'none':
      return 'no order: the position and open orders already meet the target';
    case 'duplicate':
      return 'no order: already decided on this bar';
    case 'refused':
      return `refused by ${d.rule}: ${d.reason}`;
    case 'submitted':
      return 'sent';
    case 'rejected':
      return `rejected by the broker: ${d.reason}`;
    case 'unsent':
      return `not sent: ${d.reason}`;
  }
}

function liveOutcome(storage: Storage, id: string | null): string | null {
  if (!id) return null;
  const o = storage.orders.get(id);
  if (!o) return 'live: no such order';
  return `live: ${o.side} ${o.qty} ${o.state}${o.filledQty > 0 ? ` at ${o.avgFillPrice}` : ''}${o.rejectReason ? ` (${o.rejectReason})` : ''}`;
}

function row(d: DecisionRow, rec: DeliveryRecord | undefined, storage: Storage): ReplayRow {
  return {
    time: new Date(d.at).toISOString(),
    symbol: d.bar.symbol,
    bar_start: new Date(d.bar.start).toISOString(),
    rung: rec?.rung ?? 'unknown',
    source: d.bar.source,
    close: d.bar.close,
    signals: d.signals.map(describeSignal),
    decisions: d.decisions.map((x) => {
      const id = x.action === 'none' ? null : x.clientOrderId;
      return { action: x.action, client_order_id: id, detail: describeDecision(x), live: liveOutcome(storage, id) };
    }),
  };
}
