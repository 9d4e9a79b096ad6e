import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLIENT_ORDER_ID_MAX, clientOrderId, type ClientOrderIdError } from '../../src/actors/trader/client-order-id.ts';
import { T0 } from './support.ts';

test('the same strategy, symbol, bar and index always give the same id', () => {
  assert.equal(clientOrderId('sma-crossover', 'QQQ', T0, 0), clientOrderId('sma-crossover', 'QQQ', T0, 0));
  assert.equal(clientOrderId('sma-crossover', 'QQQ', T0, 0), `bk-sma-crossover-QQQ-${T0.toString(36)}-0`);
});

test('changing any input changes the id', () => {
  const base = clientOrderId('sma-crossover', 'QQQ', T0, 0);
  const others = [
    clientOrderId('mean-reversion', 'QQQ', T0, 0),
    clientOrderId('sma-crossover', 'SPY', T0, 0),
    clientOrderId('sma-crossover', 'QQQ', T0 + 60_000, 0),
    clientOrderId('sma-crossover', 'QQQ', T0, 1),
  ];
  assert.equal(new Set([base, ...others]).size, 5);
});

test('ids use only letters, digits and dashes and stay within 48 characters, even for long or odd names', () => {
  const ids = [
    clientOrderId('My Very Long Strategy Name (v2) with spaces', 'BRK.B', T0, 35),
    clientOrderId('ünïcødé', 'ABCDEFGHIJ.ABCD', Date.UTC(2099, 11, 31), 0),
    clientOrderId('x', 'BF-B', T0, 0),
  ];
  for (const id of ids) {
    assert.match(id, /^[A-Za-z0-9-]+$/);
    assert.ok(id.length <= CLIENT_ORDER_ID_MAX, `${id} is ${id.length} chars`);
  }
  assert.match(ids[0], /-BRKdB-/);
  assert.match(ids[2], /-BFhB-/);
});

test('two long strategy names that share a prefix still get different ids', () => {
  const a = clientOrderId('momentum-strategy-alpha-one', 'QQQ', T0, 0);
  const b = clientOrderId('momentum-strategy-alpha-two', 'QQQ', T0, 0);
  assert.notEqual(a, b);
});

test('bad inputs are refused with a code', () => {
  assert.throws(
    () => clientOrderId('s', 'qqq lower', T0, 0),
    (e: ClientOrderIdError) => e.code === 'CLIENT_ORDER_ID_INPUT' && /symbol/.test(e.message),
  );
  assert.throws(() => clientOrderId('s', 'QQQ', -1, 0), /barStart/);
  assert.throws(() => clientOrderId('s', 'QQQ', T0, 1.5), /index/);
  assert.throws(() => clientOrderId('', 'QQQ', T0, 0), /strategy/);
});
