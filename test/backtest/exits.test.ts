/**
 * Backtests exercise what live trading does with protective exits and day orders: the configured
 * exits go on every entry as a bracket, and with the NYSE calendar a day order ends at the
 * session close (13:00 on an early-close day), as the live paper broker ends it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exitOrderId } from '../../src/actors/trader/order-types.ts';
import type { Bar } from '../../src/market/bar.ts';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { Strategy } from '../../src/actors/trader/strategies/contract.ts';
import { runEngine } from '../../src/backtest/engine.ts';
import { runSpec } from '../../src/backtest/run.ts';
import { checkSpec, SpecError } from '../../src/backtest/spec.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { closesToBars, MIN, seedCache, spec, T0, tempDir } from './support.ts';

const at = (i: number) => T0 + i * MIN;

test('a backtest with a take-profit exit sells at the take-profit limit, as the bracket works live', async (t) => {
  // Bars open at the previous close. SMA 3/5 buys on bar 5 (close 101) and fills at bar 6's open
  // 101 x 1.001 = 101.101; the take-profit is 3% above the reference price 101: 104.03.
  const closes = [100, 100, 100, 100, 100, 101, 102, 103, 104, 105, 106, 107];
  const dir = tempDir(t);
  await seedCache(dir, closesToBars('QQQ', T0, closes));
  const storage = openStorage({ path: dir });
  t.after(() => storage.close());

  const { report, detail } = await runSpec(spec({ to: at(closes.length), exits: { take_profit_pct: 3 } }), storage.bars);
  const entry = clientOrderId('sma-crossover', 'QQQ', at(5), 0);
  const tp = exitOrderId(entry, 'take_profit');
  assert.deepEqual(report.exits, { take_profit_pct: 3 });
  // Bar 9 opens at 104, below the limit, and trades up to 105 through it: filled at the limit.
  assert.deepEqual(
    detail.fills.slice(0, 2).map((f) => [f.clientOrderId, f.side, f.qty, f.price, f.time]),
    [
      [entry, 'buy', 10, 101.101, at(6)],
      [tp, 'sell', 10, 104.03, at(9)],
    ],
  );
  const legs = detail.orders.filter((o) => o.groupId === entry).map((o) => [o.role, o.type, o.limitPrice, o.state]);
  assert.deepEqual(legs, [
    ['entry', 'market', undefined, 'filled'],
    ['take_profit', 'limit', 104.03, 'filled'],
  ]);

  // Without exits the same bars hold the position to the end.
  const plain = await runSpec(spec({ to: at(closes.length) }), storage.bars);
  assert.equal(plain.report.exits, null);
  assert.deepEqual(
    plain.detail.fills.map((f) => f.side),
    ['buy'],
  );
});

/** Buys 10 with a day limit far below the market on its first bar, then nothing. */
function restingBid(): Strategy {
  let sent = false;
  return {
    name: 'bid',
    warmUp() {},
    onBar(symbol: string) {
      if (sent) return undefined;
      sent = true;
      return { kind: 'order', symbol, side: 'buy', qty: 10, type: 'limit', limitPrice: 90, tif: 'day', reason: 'a bid under the market' };
    },
  };
}

test('with the NYSE calendar a day order ends at 13:00 on an early-close day; on the 24/7 market it fills later', async () => {
  // Friday 2025-11-28, the day after Thanksgiving: the NYSE closes at 13:00 New York (18:00 UTC).
  const noon = Date.UTC(2025, 10, 28, 17, 50);
  const bars: Bar[] = [
    ...closesToBars('QQQ', noon, [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]), // 12:50 .. 13:00
    { ...closesToBars('QQQ', noon + 20 * MIN, [85])[0], open: 95, high: 95, low: 85 }, // 13:10, through the bid
  ];
  const input = (calendar: 'nyse' | 'none') => ({
    strategy: restingBid(),
    symbols: ['QQQ'],
    barSize: '1Min' as const,
    bars: new Map([['QQQ', bars]]),
    broker: { startingCash: 100_000, slippageBps: 0, commissionPerShare: 0.005, minCommission: 1 },
    risk: { allowedSessions: ['always' as const] },
    calendar,
  });

  const nyse = await runEngine(input('nyse'));
  assert.deepEqual(nyse.fills, []);
  assert.equal(nyse.orders[0].state, 'cancelled');
  assert.match(nyse.orders[0].rejectReason ?? '', /expired at the session close 2025-11-28T18:00:00.000Z/);

  const always = await runEngine(input('none'));
  assert.deepEqual(
    always.fills.map((f) => [f.side, f.qty, f.price]),
    [['buy', 10, 90]],
  );
});

test('exits in a backtest spec are checked like the live settings, and the error names the field', () => {
  assert.throws(
    () => checkSpec(spec({ exits: { stop_loss_pct: 150 } })),
    (err: unknown) => err instanceof SpecError && err.field === 'exits.stop_loss_pct',
  );
  assert.throws(
    () => checkSpec(spec({ exits: { stop_loss_pct: 2, trailing_stop_pct: 1 } })),
    (err: unknown) => err instanceof SpecError && err.field === 'exits.trailing_stop_pct',
  );
  assert.throws(
    () => checkSpec(spec({ calendar: 'lse' as 'nyse' })),
    (err: unknown) => err instanceof SpecError && err.field === 'calendar',
  );
  assert.deepEqual(checkSpec(spec({ exits: { stop_loss_pct: 2, take_profit_pct: null } })).exits, { stop_loss_pct: 2 });
  assert.equal(checkSpec(spec({})).calendar, 'nyse');
});
