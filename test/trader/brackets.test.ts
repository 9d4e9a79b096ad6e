import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bracketRecords, bracketWorstLoss, openWorstLoss, protectedQty } from '../../src/actors/trader/brackets.ts';
import { exitsProblem, EXIT_KEYS_SNAKE, orderSpecProblem } from '../../src/actors/trader/order-types.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { order } from './support.ts';

const entry = (o: Partial<OrderRecord> = {}): OrderRecord => order('bk-s-QQQ-1-0', { strategy: 's', tif: 'day', reason: 'cross up', ...o });

test('a long entry gets a take-profit above and a stop below its reference price, each with its own id and the shared group id', () => {
  const legs = bracketRecords(entry(), { takeProfitPct: 4, stopLossPct: 2 }, 100, 50);
  assert.deepEqual(
    legs.map((r) => [r.clientOrderId, r.role, r.groupId, r.side, r.qty, r.type, r.limitPrice, r.stopPrice, r.tif]),
    [
      ['bk-s-QQQ-1-0', 'entry', 'bk-s-QQQ-1-0', 'buy', 100, 'market', undefined, undefined, 'day'],
      ['bk-s-QQQ-1-0-tp', 'take_profit', 'bk-s-QQQ-1-0', 'sell', 100, 'limit', 52, undefined, 'gtc'],
      ['bk-s-QQQ-1-0-sl', 'stop_loss', 'bk-s-QQQ-1-0', 'sell', 100, 'stop', undefined, 49, 'gtc'],
    ],
  );
  assert.equal(bracketWorstLoss(legs, 50), 100);
});

test("a short limit entry's exits are priced from its limit, mirrored, and a trailing stop-loss risks its trail", () => {
  const legs = bracketRecords(entry({ side: 'sell', type: 'limit', limitPrice: 200 }), { takeProfitPct: 5, trailingStopPct: 1.5 }, 100, 190);
  assert.deepEqual(
    legs.slice(1).map((r) => [r.side, r.type, r.limitPrice, r.trailPercent]),
    [
      ['buy', 'limit', 190, undefined],
      ['buy', 'trailing_stop', undefined, 1.5],
    ],
  );
  assert.equal(bracketWorstLoss(legs, 190), 300);
});

test('without exits or without any price to place them from, the entry goes alone', () => {
  assert.equal(bracketRecords(entry(), undefined, 100, 50).length, 1);
  assert.equal(bracketRecords(entry(), { stopLossPct: 2 }, 100, undefined).length, 1);
  assert.equal(bracketRecords(entry(), { stopLossPct: 2 }, 0, 50).length, 1);
});

test('entries are protected in full, flips only on the new side, reductions not at all', () => {
  assert.equal(protectedQty(0, 'buy', 100), 100);
  assert.equal(protectedQty(100, 'buy', 50), 50);
  assert.equal(protectedQty(100, 'sell', 50), 0);
  assert.equal(protectedQty(100, 'sell', 300), 200);
  assert.equal(protectedQty(-100, 'sell', 10), 10);
});

test('open stop-losses put at risk the distance from the last price once filled, from the entry reference before', () => {
  const filled = entry({ clientOrderId: 'a', filledQty: 100, avgFillPrice: 50, state: 'filled' });
  const waiting = entry({ clientOrderId: 'b', type: 'limit', limitPrice: 40 });
  const open = [
    { ...entry({ clientOrderId: 'a-sl', side: 'sell', type: 'stop', stopPrice: 45 }), role: 'stop_loss' as const, groupId: 'a' },
    { ...entry({ clientOrderId: 'b-sl', side: 'sell', type: 'stop', stopPrice: 38 }), role: 'stop_loss' as const, groupId: 'b' },
    { ...entry({ clientOrderId: 'a-tp', side: 'sell', type: 'limit', limitPrice: 60 }), role: 'take_profit' as const, groupId: 'a' },
  ];
  const byId = new Map([filled, waiting].map((r) => [r.clientOrderId, r]));
  assert.equal(
    openWorstLoss(open, (id) => byId.get(id), new Map([['QQQ', 48]])),
    300 + 200,
  );
});

test('order and exit fields are refused with the name the caller used', () => {
  assert.deepEqual(orderSpecProblem({ type: 'stop_limit', stopPrice: 5 }, 'signal.'), { field: 'signal.limitPrice', message: 'a stop_limit order needs a positive price, got undefined' });
  assert.equal(orderSpecProblem({ type: 'limit', limitPrice: 5, stopPrice: 4 }, '')?.field, 'stopPrice');
  assert.equal(orderSpecProblem({ type: 'market', tif: 'fok' }, 'signal.')?.field, 'signal.tif');
  assert.equal(orderSpecProblem({ type: 'limit', limitPrice: 1, outsideRth: 'yes' }, 'signal.')?.field, 'signal.outsideRth');
  assert.equal(exitsProblem({ stop_loss_pct: 120 }, 'exits.', EXIT_KEYS_SNAKE)?.field, 'exits.stop_loss_pct');
  assert.equal(exitsProblem({ stop_loss_pct: 2, trailing_stop_pct: 1 }, 'exits.', EXIT_KEYS_SNAKE)?.field, 'exits.trailing_stop_pct');
  assert.equal(exitsProblem({ stopLoss: 2 }, 'signal.exits.')?.field, 'signal.exits.stopLoss');
  assert.equal(exitsProblem(null, 'exits.'), undefined);
});
