/**
 * The trader's session rules, kept out of actor.ts:
 *
 * - Which settings run at start. At a process start (incarnation 0) the config wins: with
 *   `trader.autostart` the loop starts on the config's symbols, strategy and params, whatever the
 *   saved session held; without autostart a session started over HTTP before the restart resumes
 *   (`started_by: resumed`). After an actor restart inside one process the session resumes as it was.
 *   Positions and orders always resume: they come from the order journal and the broker.
 * - Stop cancels working orders (they would fill later under the next strategy), except the kill
 *   switch's flatten orders.
 * - Figures are rounded for display (cents for money, 4 decimals for prices).
 */
import type { MetricSample } from '../../runtime/protocol.ts';
import type { OrderManager } from './order-manager.ts';
import type { LiveStart, PositionView } from './protocol.ts';

export type StartedBy = 'config' | 'resumed' | 'request';

export interface ResumeDecision {
  start: 'config' | 'resumed' | 'none';
  /** The saved settings the config replaced, when it did. */
  replaced: LiveStart | null;
}

export function resumeRule(o: { incarnation: number; saved: LiveStart | null; autostart: LiveStart | null }): ResumeDecision {
  if (o.saved && o.incarnation > 0) return { start: 'resumed', replaced: null };
  if (o.autostart) return { start: 'config', replaced: o.saved && !sameSettings(o.saved, o.autostart) ? o.saved : null };
  if (o.saved) return { start: 'resumed', replaced: null };
  return { start: 'none', replaced: null };
}

function sameSettings(a: LiveStart, b: LiveStart): boolean {
  const norm = (l: LiveStart) => JSON.stringify([l.symbols, l.bar_size, l.strategy, l.strategy_params ?? {}, l.broker, l.strategy_module ?? null]);
  return norm(a) === norm(b);
}

/** Cancels every working order but the kill switch's flatten orders; what could not be cancelled is said. */
export const displayMoney = (x: number): number => Math.round(x * 100) / 100 + 0;
export const displayPrice = (x: number): number => Math.round(x * 10_000) / 10_000 + 0;

/** P&L, equity, positions and exposure as Prometheus gauges. */
export function portfolioGauges(manager: OrderManager | null, positions: PositionView[]): MetricSample[] {
  if (!manager) return [];
  const pnl = manager.pnlTodayParts();
  const cash = manager.broker.cash?.();
  let gross = 0;
  let net = 0;
  let value = 0;
  const out: MetricSample[] = [];
  const g = (name: string, help: string, v: number, labels: Record<string, string> = {}) => out.push({ name, help, type: 'gauge', labels, value: v });
  for (const p of positions) {
    const mv = p.market_value ?? p.avg_price * p.qty;
    gross += Math.abs(mv);
    net += mv;
    value += mv;
    g('barkeep_position_shares', 'Position per symbol, signed shares', p.qty, { symbol: p.symbol });
    g('barkeep_position_market_value_dollars', 'Market value per symbol at the last price', mv, { symbol: p.symbol });
  }
  g('barkeep_pnl_today_dollars', "Today's P&L by part (realized is net of commissions)", pnl.realized, { part: 'realized' });
  g('barkeep_pnl_today_dollars', "Today's P&L by part (realized is net of commissions)", pnl.unrealized, { part: 'unrealized' });
  g('barkeep_pnl_today_dollars', "Today's P&L by part (realized is net of commissions)", pnl.total, { part: 'total' });
  g('barkeep_exposure_dollars', 'Exposure across positions at the last prices', gross, { kind: 'gross' });
  g('barkeep_exposure_dollars', 'Exposure across positions at the last prices', net, { kind: 'net' });
  g('barkeep_positions_open', 'Symbols with a position', positions.length);
  if (cash !== undefined) {
    g('barkeep_cash_dollars', 'Broker cash (paper)', cash);
    g('barkeep_equity_dollars', 'Cash plus the market value of the positions (paper)', cash + value);
  }
  return out;
}
