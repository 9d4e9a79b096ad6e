/**
 * NATS names barkeep uses. A subject token cannot hold a dot, and class shares have one (BRK.B):
 * symbols travel with `.` as `_`, which no ticker contains, so the mapping is reversible.
 */
import type { BarSize } from '../market/bar-size.ts';

export const BARS_STREAM = 'BARKEEP_BARS';
export const ORDERS_STREAM = 'BARKEEP_ORDERS';
export const MEMBERS_BUCKET = 'barkeep_members';
export const LEASES_BUCKET = 'barkeep_leases';

export function symbolToken(symbol: string): string {
  return symbol.replaceAll('.', '_');
}

export function tokenSymbol(token: string): string {
  return token.replaceAll('_', '.');
}

export function barSubject(barSize: BarSize, symbol: string): string {
  return `bars.${barSize}.${symbolToken(symbol)}`;
}

export function orderSubject(symbol: string): string {
  return `orders.${symbolToken(symbol)}`;
}
/** The cluster's paper account(s): one key per account, the paper broker's whole state. */
export const PAPER_BUCKET = 'barkeep_paper';
/** The cluster's shared vendor budgets (cluster/rate-share.ts): one key per vendor and API-key hash. */
export const RATES_BUCKET = 'barkeep_rates';
