/** What the order manager answers: a decision per signal, refusals, kill reports and its counters. */
import type { RiskRule } from './risk.ts';

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
