import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BrokerEvent } from '../../src/actors/trader/broker.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { bar, MIN, storageAt, T0, tempDir, order } from './support.ts';

function setup(t: Parameters<typeof tempDir>[0], dir = tempDir(t)) {
  const storage = storageAt(t, dir);
  const clock = new ManualClock(T0 + MIN);
  const broker = new PaperBroker({ checkpoints: storage.checkpoints, clock, slippageBps: 10, commissionPerShare: 0.005, minCommission: 1, startingCash: 100_000 });
  const events: BrokerEvent[] = [];
  broker.onEvent((e) => events.push(e));
  return { dir, storage, clock, broker, events };
}

test('a market buy fills at the next bar open plus slippage, pays the minimum commission, and moves cash and position', async (t) => {
  const { broker, events } = setup(t);
  const { brokerOrderId } = await broker.submit(order('o1'));
  assert.equal(brokerOrderId, 'paper-1');
  await broker.onBar(bar('QQQ', T0, 99, { open: 98 }));
  assert.equal((await broker.openOrders()).length, 1, 'the order bar itself never fills it');
  await broker.onBar(bar('SPY', T0 + MIN, 500));
  assert.equal((await broker.openOrders()).length, 1, "another symbol's bar does not fill it");
  await broker.onBar(bar('QQQ', T0 + MIN, 101, { open: 100 }));
  assert.deepEqual(await broker.openOrders(), []);
  const fills = await broker.executions();
  assert.deepEqual(fills, [{ execId: 'o1-f1', clientOrderId: 'o1', brokerOrderId: 'paper-1', symbol: 'QQQ', side: 'buy', qty: 100, price: 100.1, time: T0 + MIN, commission: 1 }]);
  assert.equal(broker.cash(), 100_000 - 10_010 - 1);
  assert.deepEqual(await broker.positions(), { QQQ: { qty: 100, avgPrice: 100.1 } });
  assert.deepEqual(
    events.map((e) => e.type),
    ['accepted', 'fill'],
  );
});

test('a market sell fills below the open and pays commission per share above the minimum', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('s1', { side: 'sell', qty: 1000 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 50, { open: 50 }));
  const [f] = await broker.executions();
  assert.equal(f.price, 49.95);
  assert.equal(f.commission, 5);
  assert.equal(broker.cash(), 100_000 + 49_950 - 5);
  assert.deepEqual(await broker.positions(), { QQQ: { qty: -1000, avgPrice: 49.95 } });
});

test('a limit buy rests until a bar trades through its limit, then fills at the limit or a better open', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('l1', { type: 'limit', limitPrice: 99 }));
  await broker.submit(order('l2', { type: 'limit', limitPrice: 102, qty: 10 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 100, { open: 100, low: 99.5, high: 100.5 }));
  const first = await broker.executions();
  assert.deepEqual(
    first.map((f) => [f.clientOrderId, f.price]),
    [['l2', 100.1]],
    'l2 fills at the open plus slippage, under its limit',
  );
  assert.deepEqual(
    (await broker.openOrders()).map((o) => o.clientOrderId),
    ['l1'],
  );
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 99.5, { open: 100, low: 98.9, high: 100 }));
  const l1 = (await broker.executions()).find((f) => f.clientOrderId === 'l1');
  assert.equal(l1?.price, 99);
});

test('submitting the same client order id twice makes one order', async (t) => {
  const { broker } = setup(t);
  const a = await broker.submit(order('dup'));
  const b = await broker.submit(order('dup'));
  assert.deepEqual(a, b);
  assert.equal((await broker.openOrders()).length, 1);
  assert.deepEqual(broker.stats(), { submitCalls: 2, accepted: 1, open: 1, fills: 0 });
});

test('a restarted paper broker resumes its working orders, cash, positions and fills from LMDB', async (t) => {
  const first = setup(t);
  await first.broker.submit(order('b1'));
  await first.broker.onBar(bar('QQQ', T0 + MIN, 10, { open: 10 }));
  await first.broker.submit(order('b2', { barStart: T0 + MIN, side: 'sell', qty: 40 }));
  const cash = first.broker.cash();
  await first.storage.close();

  const second = setup(t, first.dir);
  assert.equal(second.broker.cash(), cash);
  assert.deepEqual(
    (await second.broker.openOrders()).map((o) => o.clientOrderId),
    ['b2'],
  );
  assert.equal((await second.broker.executions()).length, 1);
  assert.deepEqual(await second.broker.submit(order('b1')), { brokerOrderId: 'paper-1' }, 'an id seen before the restart is still one order');
  await second.broker.onBar(bar('QQQ', T0 + 2 * MIN, 11, { open: 11 }));
  assert.deepEqual(await second.broker.positions(), { QQQ: { qty: 60, avgPrice: 10.01 } });
  assert.equal(second.broker.stats().accepted, 2);
});

test('cancel removes a working order and announces it; cancelling an unknown order does nothing', async (t) => {
  const { broker, events } = setup(t);
  await broker.submit(order('c1'));
  await broker.cancel('c1');
  await broker.cancel('nope');
  assert.deepEqual(await broker.openOrders(), []);
  assert.deepEqual(
    events.map((e) => e.type),
    ['accepted', 'cancelled'],
  );
  await broker.onBar(bar('QQQ', T0 + MIN, 10));
  assert.deepEqual(await broker.executions(), []);
});

test('an order the paper broker cannot work is rejected with BROKER_REJECTED', async (t) => {
  const { broker } = setup(t);
  await assert.rejects(broker.submit(order('r1', { qty: 0 })), (e: Error & { code?: string }) => e.code === 'BROKER_REJECTED' && /qty/.test(e.message));
  await assert.rejects(broker.submit(order('r2', { type: 'limit' })), /limitPrice/);
  assert.equal(broker.stats().accepted, 0);
});
