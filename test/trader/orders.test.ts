import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyFill, canTransition, OrderError, signedRemaining, transition } from '../../src/actors/trader/orders.ts';
import type { OrderRecord, OrderState } from '../../src/storage/types.ts';
import { order as baseOrder, T0 } from './support.ts';

const order = (state: OrderState = 'pending', o: Partial<OrderRecord> = {}): OrderRecord => baseOrder('bk-t-QQQ-1-0', { state, ...o });

const fill = (execId: string, qty: number, price: number, commission = 1) => ({ execId, qty, price, time: T0, commission });

test('the legal transitions are exactly the ones the machine names', () => {
  const states: OrderState[] = ['pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected'];
  const legal = new Set([
    'pending>submitted',
    'pending>rejected',
    'pending>cancelled',
    'submitted>partially_filled',
    'submitted>filled',
    'submitted>cancelled',
    'submitted>rejected',
    'partially_filled>partially_filled',
    'partially_filled>filled',
    'partially_filled>cancelled',
  ]);
  for (const from of states) for (const to of states) assert.equal(canTransition(from, to), legal.has(`${from}>${to}`), `${from}>${to}`);
});

test('an illegal transition throws ORDER_ILLEGAL_TRANSITION and names both states', () => {
  assert.throws(
    () => transition(order('filled'), 'cancelled', T0),
    (e: OrderError) => e.code === 'ORDER_ILLEGAL_TRANSITION' && /from filled to cancelled/.test(e.message),
  );
  assert.throws(() => transition(order('pending'), 'filled', T0), OrderError);
  const moved = transition(order('pending'), 'submitted', T0 + 5, { brokerOrderId: 'paper-1' });
  assert.equal(moved.state, 'submitted');
  assert.equal(moved.brokerOrderId, 'paper-1');
  assert.equal(moved.updatedAt, T0 + 5);
});

test('fills accumulate quantity, average price and commission, and move the order to partially filled then filled', () => {
  let r = order('submitted');
  r = applyFill(r, fill('e1', 40, 10), T0).record;
  assert.equal(r.state, 'partially_filled');
  assert.equal(signedRemaining(r), 60);
  r = applyFill(r, fill('e2', 60, 11, 0.5), T0).record;
  assert.equal(r.state, 'filled');
  assert.equal(r.filledQty, 100);
  assert.ok(Math.abs(r.avgFillPrice - 10.6) < 1e-12);
  assert.equal(r.commission, 1.5);
  assert.equal(signedRemaining(r), 0);
});

test('a fill seen twice is applied once', () => {
  const once = applyFill(order('submitted'), fill('e1', 40, 10), T0);
  const twice = applyFill(once.record, fill('e1', 40, 10), T0);
  assert.equal(twice.applied, false);
  assert.equal(twice.record, once.record);
  assert.equal(twice.record.filledQty, 40);
});

test('a fill for a pending order implies it was submitted, and a late fill after a cancel is kept', () => {
  const r = applyFill(order('pending'), fill('e1', 100, 10), T0);
  assert.equal(r.record.state, 'filled');
  const late = applyFill(order('cancelled'), fill('e2', 10, 10), T0);
  assert.equal(late.record.state, 'cancelled');
  assert.equal(late.record.filledQty, 10);
  assert.equal(late.anomaly, 'late_fill');
});

test('a fill with a non-positive quantity is refused with ORDER_BAD_FILL', () => {
  assert.throws(
    () => applyFill(order('submitted'), fill('e1', 0, 10), T0),
    (e: OrderError) => e.code === 'ORDER_BAD_FILL',
  );
});

test('a sell order has negative remaining quantity', () => {
  assert.equal(signedRemaining(order('submitted', { side: 'sell', qty: 30 })), -30);
});
