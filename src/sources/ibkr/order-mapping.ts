/**
 * Our order types as IB native orders, and back (docs/tws-protocol.md, orders):
 *
 *   market         MKT
 *   limit          LMT       lmtPrice
 *   stop           STP       auxPrice = stop
 *   stop_limit     STP LMT   lmtPrice = limit, auxPrice = stop
 *   trailing_stop  TRAIL     auxPrice = trail amount, or trailingPercent; trailStopPrice = initial stop
 *
 * Time in force is IB's DAY / GTC / IOC; outsideRth is IB's flag of the same name.
 *
 * Brackets are IB parent/child orders: the entry is the parent, each exit names it in `parentId`;
 * every leg but the last is placed with `transmit: false`, so TWS holds the group until the last
 * leg (transmit: true) arrives and releases them together. The exits also share an `ocaGroup`
 * (ocaType 1: cancel the others when one fills), so the one-cancels-other also holds for an exit
 * placed alone after a restart, when its parent has already filled.
 */
import { OrderAction, OrderType as IbOrderType, TimeInForce, type Order } from '@stoqey/ib';
import { IbkrError } from './errors.ts';

export type IbkrOrderKind = 'market' | 'limit' | 'stop' | 'stop_limit' | 'trailing_stop';

export interface IbkrOrderRequest {
  /** Our client order id; sent as IB's orderRef. */
  clientOrderId: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty: number;
  type: IbkrOrderKind;
  limitPrice?: number;
  stopPrice?: number;
  trailAmount?: number;
  trailPercent?: number;
  /** Default day. */
  tif?: 'day' | 'gtc' | 'ioc';
  outsideRth?: boolean;
  /** IB order id of the parent (a bracket's entry). */
  parentId?: number;
  /** Exits of one bracket share it. */
  ocaGroup?: string;
  /** False holds the order at TWS until a later order of the group is sent with true. Default true. */
  transmit?: boolean;
}

const IB_TYPE: Record<IbkrOrderKind, string> = {
  market: IbOrderType.MKT,
  limit: IbOrderType.LMT,
  stop: IbOrderType.STP,
  stop_limit: IbOrderType.STP_LMT,
  trailing_stop: IbOrderType.TRAIL,
};

const OUR_TYPE: Record<string, IbkrOrderKind> = Object.fromEntries(Object.entries(IB_TYPE).map(([ours, ib]) => [ib, ours as IbkrOrderKind]));

const TIF: Record<'day' | 'gtc' | 'ioc', TimeInForce> = { day: TimeInForce.DAY, gtc: TimeInForce.GTC, ioc: TimeInForce.IOC };

const positive = (x: number | undefined) => x !== undefined && Number.isFinite(x) && x > 0;

/** Our order type for an IB orderType string, or undefined for one we never place. */
export function orderKindOf(ibType: string | undefined): IbkrOrderKind | undefined {
  return ibType === undefined ? undefined : OUR_TYPE[ibType];
}

/** Our time in force for IB's, `day` when IB's is one we never send. */
export function tifOf(ibTif: string | undefined): 'day' | 'gtc' | 'ioc' {
  return ibTif === 'GTC' ? 'gtc' : ibTif === 'IOC' ? 'ioc' : 'day';
}

/** Checks the type-specific fields; throws IBKR_BAD_INPUT naming the field. */
export function checkOrderFields(req: IbkrOrderRequest): void {
  const bad = (field: string, message: string) => new IbkrError('IBKR_BAD_INPUT', `${field} ${message}`);
  if (!(req.type in IB_TYPE)) throw bad('type', `must be one of ${Object.keys(IB_TYPE).join(', ')}, got ${JSON.stringify(req.type)}`);
  if ((req.type === 'limit' || req.type === 'stop_limit') && !positive(req.limitPrice)) throw bad('limitPrice', `must be a positive number for a ${req.type} order, got ${req.limitPrice}`);
  if ((req.type === 'stop' || req.type === 'stop_limit') && !positive(req.stopPrice)) throw bad('stopPrice', `must be a positive number for a ${req.type} order, got ${req.stopPrice}`);
  if (req.type === 'trailing_stop' && positive(req.trailAmount) === positive(req.trailPercent)) throw bad('trailAmount', 'or trailPercent (exactly one, positive) is needed for a trailing_stop order');
  if (req.tif !== undefined && !(req.tif in TIF)) throw bad('tif', `must be day, gtc or ioc, got ${JSON.stringify(req.tif)}`);
  if (req.parentId !== undefined && !(Number.isInteger(req.parentId) && req.parentId > 0)) throw bad('parentId', `must be a positive IB order id, got ${req.parentId}`);
}

/** The IB Order for `req` (contract and order id are the caller's). */
export function toIbOrder(req: IbkrOrderRequest, account: string | undefined): Order {
  const order: Order = {
    action: req.side === 'buy' ? OrderAction.BUY : OrderAction.SELL,
    totalQuantity: req.qty,
    orderType: IB_TYPE[req.type] as IbOrderType,
    tif: TIF[req.tif ?? 'day'],
    orderRef: req.clientOrderId,
    account,
    transmit: req.transmit ?? true,
  };
  if (req.type === 'limit' || req.type === 'stop_limit') order.lmtPrice = req.limitPrice;
  if (req.type === 'stop' || req.type === 'stop_limit') order.auxPrice = req.stopPrice;
  if (req.type === 'trailing_stop') {
    if (req.trailAmount !== undefined) order.auxPrice = req.trailAmount;
    else order.trailingPercent = req.trailPercent;
    if (req.stopPrice !== undefined) order.trailStopPrice = req.stopPrice;
  }
  if (req.outsideRth) order.outsideRth = true;
  if (req.parentId !== undefined) order.parentId = req.parentId;
  if (req.ocaGroup) {
    order.ocaGroup = req.ocaGroup;
    order.ocaType = 1;
  }
  return order;
}
