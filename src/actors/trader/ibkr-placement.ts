/**
 * The ibkr broker's two translations to and from TWS orders: placing one OrderRecord as an IB order
 * (with its bracket link: parentId, ocaGroup, transmit) and the acknowledgement rule it waits on,
 * and reading one of TWS's open orders back as a BrokerOrder.
 */
import type { IbkrOpenOrder, IbkrOrderClient } from '../../sources/ibkr/order-client.ts';
import { IbkrError } from '../../sources/ibkr/errors.ts';
import { tifOf } from '../../sources/ibkr/order-mapping.ts';
import { isAccepted, isFinished, orderPhase, orderTypeOf } from '../../sources/ibkr/order-status.ts';
import type { OrderRecord } from '../../storage/types.ts';
import { type BrokerOrder, BrokerError } from './broker.ts';
import type { KnownOrder, KnownOrders } from './ibkr-known-orders.ts';
import { type OrderWaits, unavailable } from './ibkr-order-waits.ts';

/** How a leg hangs in its bracket at TWS. */
export interface PlacementLink {
  parentId?: number;
  ocaGroup?: string;
  /** False holds the order at TWS until a later one of the group is sent with true. */
  transmit?: boolean;
}

/**
 * Places one order on the order client and remembers it; its `ack` resolves when TWS first says
 * it works (a status that accepts it, or an execution), and rejects BROKER_REJECTED when TWS
 * refuses it, BROKER_UNAVAILABLE when the socket goes first.
 */
export function placeOrder(client: IbkrOrderClient, orders: KnownOrders, waits: OrderWaits, epoch: number, order: OrderRecord, link: PlacementLink): KnownOrder {
  const id = order.clientOrderId;
  // What the placed order and its record here both start with.
  const head = {
    clientOrderId: id,
    symbol: order.symbol,
    side: order.side,
    qty: order.qty,
    type: order.type,
    ...(order.limitPrice !== undefined ? { limitPrice: order.limitPrice } : {}),
  };
  let orderId: number;
  try {
    orderId = client.placeOrder({
      ...head,
      ...(order.stopPrice !== undefined ? { stopPrice: order.stopPrice } : {}),
      ...(order.trailAmount !== undefined ? { trailAmount: order.trailAmount } : {}),
      ...(order.trailPercent !== undefined ? { trailPercent: order.trailPercent } : {}),
      ...(order.tif !== undefined ? { tif: order.tif } : {}),
      ...(order.outsideRth ? { outsideRth: true } : {}),
      ...(link.parentId !== undefined ? { parentId: link.parentId } : {}),
      ...(link.ocaGroup ? { ocaGroup: link.ocaGroup } : {}),
      transmit: link.transmit ?? true,
    });
  } catch (err) {
    // placeOrder throws before anything is written to the socket.
    if (err instanceof IbkrError && err.code === 'IBKR_BAD_INPUT') throw new BrokerError('BROKER_REJECTED', `order ${id} refused before sending: ${err.message}`, { cause: err });
    throw unavailable(`order ${id} was not sent: ${(err as Error).message}`, err);
  }
  const placed: KnownOrder = {
    orderId,
    ...head,
    phase: null,
    filled: 0,
    confirmed: false,
    epoch,
    accepted: false,
    final: false,
    cancelRequested: false,
  };
  orders.remember(placed);
  placed.ack = waits.waitFor(orderId, `order ${id} (IB order ${orderId})`, (s) => {
    switch (s.kind) {
      case 'status':
        if (isAccepted(s.phase)) return 'done';
        return new BrokerError('BROKER_REJECTED', `IB did not accept order ${id}: ${placed.rejectReason ?? placed.lastError ?? s.status}`);
      case 'execution':
        return 'done';
      case 'error':
        if (s.error === 'refused') return new BrokerError('BROKER_REJECTED', `IB rejected order ${id}: ${s.code} ${s.message}`);
        if (s.error === 'duplicate-id') return unavailable(`IB refused order id ${orderId} of order ${id} as a duplicate id; the order was not placed`);
        return undefined;
      case 'gone':
        return unavailable(`${s.reason} before TWS acknowledged order ${id}; reconciliation decides whether it arrived`);
    }
  });
  return placed;
}

/** One of TWS's open orders as the Broker contract lists it; undefined for one that has finished or is not ours. */
export function openOrderView(r: IbkrOpenOrder): BrokerOrder | undefined {
  if (!r.clientOrderId || isFinished(orderPhase(r.status))) return undefined;
  const filled = r.filled ?? 0;
  const type = orderTypeOf(r.type);
  const stop = type === 'stop' || type === 'stop_limit' ? r.auxPrice : type === 'trailing_stop' ? r.trailStopPrice : undefined;
  return {
    clientOrderId: r.clientOrderId,
    brokerOrderId: String(r.orderId),
    symbol: r.symbol,
    side: r.side,
    qty: r.qty,
    type,
    ...((type === 'limit' || type === 'stop_limit') && r.limitPrice !== undefined ? { limitPrice: r.limitPrice } : {}),
    ...(stop !== undefined ? { stopPrice: stop } : {}),
    ...(type === 'trailing_stop' && r.trailingPercent !== undefined ? { trailPercent: r.trailingPercent } : type === 'trailing_stop' && r.auxPrice !== undefined ? { trailAmount: r.auxPrice } : {}),
    tif: tifOf(r.tif),
    ...(r.outsideRth ? { outsideRth: true } : {}),
    ...(r.ocaGroup ? { groupId: r.ocaGroup } : {}),
    filledQty: filled,
    state: filled > 0 ? 'partially_filled' : 'submitted',
  };
}
