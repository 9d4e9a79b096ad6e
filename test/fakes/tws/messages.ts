/**
 * Server → client messages, field by field as @stoqey/ib 1.6.10 decodes them (docs/tws-protocol.md:
 * Connecting through Orders). Every builder takes the negotiated server version where the layout depends on it.
 */
import type { Field } from './framing.ts';

export const IN = {
  ORDER_STATUS: 3,
  ERR_MSG: 4,
  OPEN_ORDER: 5,
  NEXT_VALID_ID: 9,
  EXECUTION_DATA: 11,
  MANAGED_ACCTS: 15,
  HISTORICAL_DATA: 17,
  CURRENT_TIME: 49,
  REAL_TIME_BARS: 50,
  OPEN_ORDER_END: 53,
  EXECUTION_DATA_END: 55,
  COMMISSION_REPORT: 59,
  HISTORICAL_DATA_UPDATE: 90,
} as const;

/** Double.MAX_VALUE as Java prints it: stoqey reads it as "not set". */
export const UNSET_DOUBLE = '1.7976931348623157E308';
export const UNSET_INT = 2147483647;

/** Formats a price the way TWS does: plain decimal, no exponent for normal prices. */
export function num(x: number): string {
  return String(Math.round(x * 1e8) / 1e8);
}

export function errMsg(id: number, code: number, text: string): Field[] {
  return [IN.ERR_MSG, 2, id, code, text, ''];
}

export function managedAccounts(accounts: readonly string[]): Field[] {
  return [IN.MANAGED_ACCTS, 1, accounts.join(',')];
}

export function nextValidId(id: number): Field[] {
  return [IN.NEXT_VALID_ID, 1, id];
}

export function currentTime(epochSeconds: number): Field[] {
  return [IN.CURRENT_TIME, 1, epochSeconds];
}

export interface RealTimeBarFields {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  wap: number;
  count: number;
}

export function realTimeBar(reqId: number, b: RealTimeBarFields): Field[] {
  return [IN.REAL_TIME_BARS, 3, reqId, b.time, num(b.open), num(b.high), num(b.low), num(b.close), num(b.volume), num(b.wap), b.count];
}

export interface HistoricalBarFields {
  date: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  wap: number;
  count: number;
}

/** At sv >= 124: no version field and no hasGaps; 8 fields per bar. */
export function historicalData(reqId: number, startStr: string, endStr: string, bars: readonly HistoricalBarFields[]): Field[] {
  const out: Field[] = [IN.HISTORICAL_DATA, reqId, startStr, endStr, bars.length];
  for (const b of bars) out.push(b.date, num(b.open), num(b.high), num(b.low), num(b.close), num(b.volume), num(b.wap), b.count);
  return out;
}

/** Note the order: barCount, date, open, close, high, low, wap, volume (docs/tws-protocol.md, Historical data; Pitfalls 7). */
export function historicalDataUpdate(reqId: number, b: HistoricalBarFields): Field[] {
  return [IN.HISTORICAL_DATA_UPDATE, reqId, b.count, b.date, num(b.open), num(b.close), num(b.high), num(b.low), num(b.wap), num(b.volume)];
}

export interface SimContract {
  conId: number;
  symbol: string;
  secType: string;
  exchange: string;
  primaryExch: string;
  currency: string;
}

export interface SimOrder {
  orderId: number;
  clientId: number;
  permId: number;
  account: string;
  contract: SimContract;
  action: 'BUY' | 'SELL';
  totalQuantity: number;
  orderType: string;
  lmtPrice?: number;
  auxPrice?: number;
  tif: string;
  orderRef: string;
  parentId: number;
  outsideRth: boolean;
  /** Exits of one bracket share it; a fill cancels the rest of the group. */
  ocaGroup: string;
  /** TRAIL: percent trail (auxPrice holds an amount trail). */
  trailingPercent?: number;
  /** TRAIL: the current stop level. STP LMT: whether the stop was hit. */
  trailStopPrice?: number;
  triggered?: boolean;
  /** TRAIL: best price seen since it started working. */
  extreme?: number;
  /** Placed with transmit=0: TWS holds it unseen until a transmitting order of its group comes. */
  held?: boolean;
  /** DAY orders: when IB cancels it (the session close it belongs to). */
  dayEnd?: number;
  status: string;
  filled: number;
  remaining: number;
  avgFillPrice: number;
  lastFillPrice: number;
}

export interface SimExecution {
  execId: string;
  orderId: number;
  clientId: number;
  permId: number;
  account: string;
  contract: SimContract;
  time: string;
  side: 'BOT' | 'SLD';
  shares: number;
  price: number;
  cumQty: number;
  avgPrice: number;
  orderRef: string;
  commission: number;
  currency: string;
  /** Simulated epoch ms, for filtering. */
  at: number;
}

/** ORDER_STATUS at sv >= 131: 12 fields, no version. */
export function orderStatus(o: SimOrder): Field[] {
  return [IN.ORDER_STATUS, o.orderId, o.status, num(o.filled), num(o.remaining), num(o.avgFillPrice), o.permId, o.parentId, num(o.lastFillPrice), o.clientId, '', 0];
}

const optPrice = (x: number | undefined) => (x === undefined ? '' : num(x));

/** OPEN_ORDER at sv >= 145 (no version field); 133 fields at sv 193 (docs/tws-protocol.md, Orders). */
export function openOrder(sv: number, o: SimOrder): Field[] {
  const c = o.contract;
  const f: Field[] = [IN.OPEN_ORDER, o.orderId];
  // 2. contract
  f.push(c.conId, c.symbol, c.secType, '', 0, '', '', c.exchange, c.currency, c.symbol, c.symbol);
  // 3. main order fields
  f.push(o.action, num(o.totalQuantity), o.orderType, optPrice(o.lmtPrice), optPrice(o.auxPrice), o.tif, o.ocaGroup, o.account, 'O', 0);
  f.push(o.orderRef, o.clientId, o.permId, o.outsideRth, 0, '0', '', '');
  // 4. FA params
  f.push('', '', '');
  if (sv < 177) f.push('');
  // 5.
  f.push('', '', '', '', '', 0, '', -1, 0);
  // 6. box / peg-to-stock / display / flags
  f.push('', '', '', '', '', '', false, false, false, '', o.ocaGroup ? 1 : 0, false, false, '', o.parentId, 0);
  // 7. volatility; an empty deltaNeutralOrderType turns its 8 extra fields off
  f.push('', 0, '', '');
  // 8. continuousUpdate, referencePriceType, trailStopPrice, trailingPercent, basisPoints, basisPointsType
  f.push(0, 0, optPrice(o.trailStopPrice), optPrice(o.trailingPercent), '', '');
  // 9. combo legs: description, 0 legs, 0 order legs, 0 smart-combo params
  f.push('', 0, 0, 0);
  // 10. scale: an empty price increment turns the 7 extra fields off
  f.push('', '', '');
  // 11. hedge, opt-out smart routing, clearing, not held, delta-neutral contract
  f.push('', false, '', '', false, false);
  // 12. algo, solicited
  f.push('', false);
  // 13. what-if and order state
  f.push(false, o.status, '', '', '', '', '', '', '', '', '', '', '', '', '', '');
  // 14. randomize flags
  f.push(false, false);
  // 15. conditions
  f.push(0);
  // 16. adjusted order params: adjustedOrderType, triggerPrice, trailStopPrice (stoqey reads it here again), lmtPriceOffset, ...
  f.push('', '', optPrice(o.trailStopPrice), '', '', '', '', 0);
  // 17. soft dollar tier, cash qty, flags, duration, postToAts, autoCancelParent
  f.push('', '', '', '', false, false, false, false, UNSET_INT, UNSET_INT, false);
  // 18. peg best / peg mid
  f.push(UNSET_INT, UNSET_INT, '', '', '');
  // 19. version-gated tail
  if (sv >= 183) f.push('');
  if (sv >= 184) f.push(false);
  if (sv >= 185) f.push('');
  if (sv >= 189) f.push(false);
  if (sv >= 193) f.push('', UNSET_INT);
  return f;
}

/** EXECUTION_DATA at sv >= 136 (no version); 32 fields from sv 178 (pendingPriceRevision). */
export function executionData(sv: number, reqId: number, e: SimExecution): Field[] {
  const c = e.contract;
  const f: Field[] = [IN.EXECUTION_DATA, reqId, e.orderId];
  f.push(c.conId, c.symbol, c.secType, '', 0, '', '', c.exchange, c.currency, c.symbol, c.symbol);
  f.push(e.execId, e.time, e.account, c.exchange, e.side, num(e.shares), num(e.price), e.permId, e.clientId, 0);
  f.push(num(e.cumQty), num(e.avgPrice), e.orderRef, '', '', '', 1);
  if (sv >= 178) f.push(false);
  return f;
}

export function commissionReport(e: SimExecution): Field[] {
  return [IN.COMMISSION_REPORT, 1, e.execId, num(e.commission), e.currency, UNSET_DOUBLE, UNSET_DOUBLE, ''];
}

export function openOrderEnd(): Field[] {
  return [IN.OPEN_ORDER_END, 1];
}

export function executionDataEnd(reqId: number): Field[] {
  return [IN.EXECUTION_DATA_END, 1, reqId];
}
