/**
 * Stopping a session cancels every order it has working, including one still on its way to the
 * broker when the stop comes (regression: POST /live/stop answered while such an order went on
 * working, and filled later under whatever ran next).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { bar, MIN, rig, scripted, T0 } from './support.ts';
import { PaperStandIn } from '../helpers/paper-stand-in.ts';

/** The real paper broker, whose submit waits at a gate the test opens. */
class GatedBroker extends PaperStandIn {
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => {
    this.open = r;
  });
  private reached!: () => void;
  /** Resolves once a submit is waiting at the gate. */
  readonly waiting = new Promise<void>((r) => {
    this.reached = r;
  });
  release(): void {
    this.open();
  }
  override async submit(order: OrderRecord): Promise<{ brokerOrderId: string }> {
    this.reached();
    await this.gate;
    return this.paper.submit(order);
  }
}

test('a stop that comes while an order is on its way to the broker cancels that order too', async (t) => {
  let gated: GatedBroker | undefined;
  const limit = { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 10, type: 'limit', limitPrice: 90, tif: 'gtc', reason: 'resting bid' } as const;
  const r = await rig(t, {
    strategy: scripted('s', new Map([[T0, limit]])),
    broker: (paper) => {
      gated = new GatedBroker(paper);
      return gated;
    },
  });
  r.clock.set(T0 + MIN);
  const deciding = r.loop.onBar(bar('QQQ', T0, 100));
  await gated!.waiting;
  const id = clientOrderId('s', 'QQQ', T0, 0);
  assert.equal(r.storage.orders.get(id)?.state, 'pending', 'journaled, not yet at the broker');

  const stopping = r.orders.cancelWorking();
  gated!.release();
  const { cancelled, errors } = await stopping;
  assert.deepEqual(errors, []);
  assert.deepEqual(cancelled, [id]);
  // Right when the stop answers: nothing open in the manager, the journal or the broker.
  assert.deepEqual(r.orders.openOrders(), []);
  assert.equal(r.storage.orders.get(id)?.state, 'cancelled');
  assert.deepEqual(await r.broker.openOrders(), []);
  await deciding;

  // A later bar that trades through the limit fills nothing.
  r.clock.set(T0 + 2 * MIN);
  await r.orders.onBar(bar('QQQ', T0 + MIN, 80, { open: 85, low: 79 }));
  assert.deepEqual(await r.broker.executions(), []);
});
