/**
 * The backtest engine over a real LMDB cache: a case computed by hand, no look-ahead, and a
 * strategy that throws failing the run. The engine drives the live TradingLoop, RiskEngine,
 * OrderManager and PaperBroker; these tests hold it to what a live paper session would do.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { Strategy } from '../../src/actors/trader/strategies/contract.ts';
import { loadBars } from '../../src/backtest/bars.ts';
import { BacktestError, runEngine } from '../../src/backtest/engine.ts';
import { runSpec } from '../../src/backtest/run.ts';
import type { Bar } from '../../src/market/bar.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { closesToBars, MIN, seedCache, spec, T0, tempDir } from './support.ts';

/**
 * 40 one-minute QQQ bars from 10:00 New York; each bar opens at the previous close.
 *   0-4    100 x5          warm-up of SMA(5); at bar 4 fast = slow = 100: target 0, nothing to do
 *   5-12   101 .. 108      bar 5: fast (100+100+101)/3 = 100.3333 > slow (100*4+101)/5 = 100.2: buy 10
 *   13-22  107 .. 98       bar 15 (105): fast (107+106+105)/3 = 106 < slow (107+108+107+106+105)/5 = 106.6: sell 10
 *   23-32  99 .. 108       bar 25 (101): fast (99+100+101)/3 = 100 > slow (98+99+100+101+99... see below)
 *   33-39  104, 100 .. 80  bar 34 (100): fast (108+104+100)/3 = 104 < slow (106+107+108+104+100)/5 = 105: sell 10
 * Bar 25's slow SMA is closes 21..25 = 99, 98, 99, 100, 101: 99.4 < 100. Bars 23 and 24 stay flat:
 * bar 23 fast (99+98+99)/3 = 98.67 < 99.4 (closes 19..23), bar 24 fast 99 < 99.2.
 * Between, bar 13 (fast 107.33 > slow 106.6) and bar 14 (107 > 106.8) hold; bar 33 (106.33 > 106) holds.
 *
 * Fills: market orders at the next bar's open (the signal bar's close), 10 bps against the order,
 * commission max(10 x 0.005, 1) = 1 per fill:
 *   buy  @ bar 6  open 101 x 1.001 = 101.101    sell @ bar 16 open 105 x 0.999 = 104.895
 *   buy  @ bar 26 open 101 x 1.001 = 101.101    sell @ bar 35 open 100 x 0.999 = 99.9
 * Trade 1: (104.895 - 101.101) x 10 - 2 = 35.94. Trade 2: (99.9 - 101.101) x 10 - 2 = -14.01.
 * Final equity: 100000 + 35.94 - 14.01 = 100021.93, flat.
 */
const CLOSES = [
  100, 100, 100, 100, 100, 101, 102, 103, 104, 105, 106, 107, 108, 107, 106, 105, 104, 103, 102, 101, 100, 99, 98, 99, 100, 101, 102, 103, 104, 105,
  106, 107, 108, 104, 100, 96, 92, 88, 84, 80,
];
const at = (i: number) => T0 + i * MIN;

test('an SMA 3/5 crossover over 40 known bars makes exactly the trades, fills and final equity computed by hand', async (t) => {
  assert.equal(CLOSES.length, 40);
  const dir = tempDir(t);
  await seedCache(dir, closesToBars('QQQ', T0, CLOSES));
  const storage = openStorage({ path: dir });
  t.after(() => storage.close());

  const { report, detail } = await runSpec(spec({}), storage.bars);

  const id = (i: number) => clientOrderId('sma-crossover', 'QQQ', at(i), 0);
  assert.equal(id(5), `bk-sma-crossover-QQQ-${at(5).toString(36)}-0`);
  assert.deepEqual(
    detail.fills.map((f) => [f.clientOrderId, f.side, f.qty, f.price, f.commission, f.time]),
    [
      [id(5), 'buy', 10, 101.101, 1, at(6)],
      [id(15), 'sell', 10, 104.895, 1, at(16)],
      [id(25), 'buy', 10, 101.101, 1, at(26)],
      [id(34), 'sell', 10, 99.9, 1, at(35)],
    ],
  );
  assert.deepEqual(
    detail.orders.map((o) => [o.clientOrderId, o.state, o.createdAt]),
    [
      [id(5), 'filled', at(6)],
      [id(15), 'filled', at(16)],
      [id(25), 'filled', at(26)],
      [id(34), 'filled', at(35)],
    ],
    'each order is decided at its bar close (the next bar start) and fills there',
  );
  assert.deepEqual(
    detail.trades.map((tr) => [tr.direction, tr.qty, tr.entry_price, tr.exit_price, tr.pnl, tr.open]),
    [
      ['long', 10, 101.101, 104.895, 35.94, false],
      ['long', 10, 101.101, 99.9, -14.01, false],
    ],
  );
  assert.equal(report.final_equity, 100021.93);
  assert.equal(report.pnl, 21.93);
  assert.equal(report.total_return, 0.000219);
  assert.equal(report.trades, 2);
  assert.equal(report.win_rate, 0.5);
  assert.equal(report.profit_factor, Math.round((35.94 / 14.01) * 1e6) / 1e6);
  assert.equal(report.commissions, 4);
  assert.equal(report.bars, 40);
  assert.equal(report.orders, 4);
  assert.deepEqual(report.final_positions, {});
  // Held after bars 6..15 and 26..34 (the position exists from the fill at bar 6's open): 19 of 40 closes.
  assert.equal(report.exposure, 19 / 40);
  assert.equal(report.per_symbol.QQQ.final_equity, 100021.93);
  assert.equal(report.equity_curve.length, 40);
  assert.equal(report.equity_curve.at(-1)!.equity, 100021.93);
  assert.match(report.digest, /^[0-9a-f]{16}$/);
});

test('a strategy sees each bar only after it has closed, in time order, and orders fill at a later bar', async (t) => {
  const dir = tempDir(t);
  const qqq = closesToBars('QQQ', T0, CLOSES);
  // SPY's bars every 2 minutes: the merge must interleave the two series by time.
  const spy = closesToBars('SPY', T0 + MIN, CLOSES.slice(0, 20).map((c) => c * 4), '1Min', 2 * MIN);
  await seedCache(dir, [...qqq, ...spy]);
  const storage = openStorage({ path: dir });
  t.after(() => storage.close());
  const { bars } = loadBars(storage.bars, ['QQQ', 'SPY'], '1Min', T0, T0 + 40 * MIN);

  const seen: Array<{ symbol: string; start: number; now: number }> = [];
  const strategy: Strategy = {
    name: 'recorder',
    warmUp() {},
    onBar(symbol, bar, ctx) {
      seen.push({ symbol, start: bar.start, now: ctx.now });
      // Trade every fifth bar, to see when fills land.
      return seen.length % 5 === 0 ? { kind: 'target', symbol, targetQty: seen.length % 10 === 0 ? 0 : 5, reason: 'test' } : undefined;
    },
  };
  const run = await runEngine({
    strategy,
    symbols: ['QQQ', 'SPY'],
    barSize: '1Min',
    bars,
    broker: { startingCash: 100_000, slippageBps: 0, commissionPerShare: 0, minCommission: 0 },
    risk: { allowedSessions: ['always'] },
  });

  assert.equal(seen.length, 60);
  for (let i = 0; i < seen.length; i++) {
    const s = seen[i];
    assert.ok(s.now >= s.start + MIN, `bar ${s.symbol} ${s.start} was shown at ${s.now}, before its close`);
    if (i > 0) assert.ok(s.start >= seen[i - 1].start, 'bars reach the strategy in time order');
    // Nothing newer than what the clock allows: every bar already shown has closed by now.
    for (const earlier of seen.slice(0, i)) assert.ok(earlier.start + MIN <= s.now);
  }
  assert.ok(run.fills.length > 0);
  for (const f of run.fills) {
    const order = run.orders.find((o) => o.clientOrderId === f.clientOrderId)!;
    assert.ok(f.time > order.barStart, `fill ${f.execId} at ${f.time} is not after its signal bar ${order.barStart}`);
    assert.ok(f.time >= order.createdAt, 'an order fills no earlier than it was decided');
  }
});

test('a strategy that throws fails the backtest with its reason, instead of pausing the symbol', async () => {
  const bars = new Map<string, Bar[]>([['QQQ', closesToBars('QQQ', T0, CLOSES)]]);
  const strategy: Strategy = {
    name: 'fragile',
    warmUp() {},
    onBar(_symbol, bar) {
      if (bar.close > 105) throw new Error('no model above 105');
      return undefined;
    },
  };
  await assert.rejects(
    runEngine({ strategy, symbols: ['QQQ'], barSize: '1Min', bars, broker: { startingCash: 1000, slippageBps: 0, commissionPerShare: 0, minCommission: 0 }, risk: { allowedSessions: ['always'] } }),
    (err: unknown) => err instanceof BacktestError && err.code === 'BACKTEST_STRATEGY_FAILED' && /no model above 105/.test(err.message),
  );
});
