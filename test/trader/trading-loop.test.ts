import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import type { Signal, Strategy } from '../../src/actors/trader/strategies/contract.ts';
import { createStrategy } from '../../src/actors/trader/strategies/registry.ts';
import { bar, MIN, rig, scripted, series, T0 } from './support.ts';

const CLOSES = [10, 10, 10, 10, 12, 14, 8, 6, 6];

test('bars become signals, orders fill at the next open with slippage and commission, and positions and cash follow', async (t) => {
  const strategy = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4, qty: 100 } });
  const r = await rig(t, { strategy });
  const bars = series('QQQ', T0, CLOSES);
  await r.feed(bars.slice(0, 5));

  const buyId = clientOrderId('sma-crossover', 'QQQ', bars[4].start, 0);
  assert.deepEqual(
    r.loop.status().openOrders.map((o) => [o.clientOrderId, o.side, o.qty, o.state]),
    [[buyId, 'buy', 100, 'submitted']],
  );
  assert.equal(r.orders.position('QQQ'), 0, 'nothing fills on the signal bar');

  await r.feed(bars.slice(5, 6));
  assert.equal(r.orders.position('QQQ'), 100);
  assert.equal(r.broker.cash(), 100_000 - 1201.2 - 1);

  await r.feed(bars.slice(6));
  const status = r.loop.status();
  assert.equal(r.orders.position('QQQ'), 0);
  assert.equal(status.cash, 100_000 - 1201.2 - 1 + 799.2 - 1);
  assert.ok(Math.abs(status.pnlToday - (-402 - 2)) < 1e-9, `pnl today ${status.pnlToday}`);
  assert.equal(status.pnl.unrealized, 0);
  assert.equal(status.pnl.commission, 2);
  assert.ok(Math.abs(status.pnl.realized - status.pnlToday) < 1e-9);
  assert.deepEqual(status.openOrders, []);
  assert.equal(status.counters.orders.submitted, 2);
  assert.equal(status.counters.orders.fills, 2);
  assert.equal(status.counters.bars, CLOSES.length);

  const journal = r.storage.orders.all();
  assert.deepEqual(
    journal.map((o) => [o.side, o.state, o.filledQty, o.avgFillPrice, o.commission]),
    [
      ['buy', 'filled', 100, 12.012, 1],
      ['sell', 'filled', 100, 7.992, 1],
    ],
  );
  assert.equal(journal[0].fills[0].execId, `${buyId}-f1`);
  assert.equal(journal[0].fills[0].time, bars[5].start);
  assert.match(journal[0].reason, /fast SMA\(2\) 11\.0000 above slow SMA\(4\) 10\.5000/);
  assert.match(journal[1].reason, /equal to/);
});

test('a strategy that throws for one symbol pauses that symbol and counts it, while the other keeps trading', async (t) => {
  const strategy = await createStrategy({ name: 'user', module: 'test/fixtures/user-strategy.ts', params: { qty: 10, throwFor: 'BAD' } });
  const r = await rig(t, { strategy });
  const good = series('GOOD', T0, [10, 11, 12, 11, 12, 13]);
  const bad = series('BAD', T0, [10, 11, 12, 11, 12, 13]);
  for (let i = 0; i < good.length; i++) await r.feed([bad[i], good[i]]);

  const s = r.loop.status();
  assert.equal(s.counters.strategyErrors, 1, 'the first throw pauses the symbol; later bars do not reach the strategy');
  assert.equal(s.counters.pausedBars, 5);
  assert.deepEqual(
    s.pausedSymbols.map((p) => p.symbol),
    ['BAD'],
  );
  assert.match(s.pausedSymbols[0].reason, /threw in onBar: no data model for BAD/);
  assert.ok(r.log.has('error', /strategy threw in onBar; symbol paused/));
  assert.ok(s.counters.orders.submitted >= 2, 'GOOD traded');
  assert.equal(r.orders.position('GOOD'), 10);
  assert.ok(r.storage.orders.all().every((o) => o.symbol === 'GOOD'));

  r.loop.resumeSymbol('BAD');
  await r.feed([bar('BAD', T0 + 6 * MIN, 13)]);
  assert.equal(r.loop.status().counters.strategyErrors, 2, 'resumed, it is tried again and paused again');
});

test('a malformed signal pauses its symbol and trades none of that bar', async (t) => {
  const script = new Map<number, Signal | Signal[]>([
    [
      T0,
      [
        { kind: 'target', symbol: 'QQQ', targetQty: 5, reason: 'ok' },
        { kind: 'target', symbol: 'QQQ', targetQty: Number.NaN, reason: 'bug' },
      ],
    ],
  ]);
  const r = await rig(t, { strategy: scripted('scripted', script) });
  await r.feed([bar('QQQ', T0, 10)]);
  const s = r.loop.status();
  assert.equal(s.counters.invalidSignals, 1);
  assert.match(s.pausedSymbols[0]?.reason ?? '', /malformed signal: signal\.targetQty must be a whole number/);
  assert.deepEqual(r.storage.orders.all(), []);
});

test('a bar no newer than the last one is skipped, including the last warm-up bar sent again', async (t) => {
  let calls = 0;
  const counting: Strategy = { name: 'count', warmUp() {}, onBar: () => void calls++ };
  const r = await rig(t, { strategy: counting });
  const bars = series('QQQ', T0, [1, 2, 3]);
  r.loop.warmUp('QQQ', bars.slice(0, 2));
  await r.feed([bars[1], bars[2], bars[2], bars[0]]);
  assert.equal(calls, 1);
  assert.equal(r.loop.status().counters.staleBars, 3);
});

test('a risk refusal is recorded with its rule and reason and nothing is journaled', async (t) => {
  const script = new Map<number, Signal>([[T0, { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 100, type: 'market', reason: 'big' }]]);
  const r = await rig(t, { strategy: scripted('s', script), risk: { maxOrderNotional: 500 } });
  await r.feed([bar('QQQ', T0, 10)]);
  const s = r.loop.status();
  assert.equal(s.counters.orders.refused.max_order_notional, 1);
  assert.match(s.lastDecisions.QQQ.detail ?? '', /^max_order_notional: buy 100 QQQ has a notional of \$1,000\.00/);
  assert.equal(s.risk.recentRefusals[0].rule, 'max_order_notional');
  assert.deepEqual(r.storage.orders.all(), []);
});

test('past the daily loss, computed from fills and last prices, new entries are refused and closing trades pass', async (t) => {
  const script = new Map<number, Signal>([
    [T0, { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 100, type: 'market', reason: 'entry' }],
    [T0 + 2 * MIN, { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 10, type: 'market', reason: 'add' }],
    [T0 + 3 * MIN, { kind: 'order', symbol: 'QQQ', side: 'sell', qty: 100, type: 'market', reason: 'exit' }],
  ]);
  const r = await rig(t, { strategy: scripted('s', script), risk: { maxDailyLoss: 400 }, slippageBps: 0 });
  await r.feed([bar('QQQ', T0, 10), bar('QQQ', T0 + MIN, 6, { open: 10 }), bar('QQQ', T0 + 2 * MIN, 5)]);
  assert.ok(r.orders.pnlToday() <= -400, `pnl ${r.orders.pnlToday()}`);
  assert.equal(r.loop.status().counters.orders.refused.max_daily_loss, 1);
  await r.feed([bar('QQQ', T0 + 3 * MIN, 5), bar('QQQ', T0 + 4 * MIN, 5)]);
  assert.equal(r.orders.position('QQQ'), 0, 'the exit went through');
});

test('the kill switch cancels open orders and refuses new ones until resumed', async (t) => {
  const limit = (start: number): Signal => ({ kind: 'order', symbol: 'QQQ', side: 'buy', qty: 10, type: 'limit', limitPrice: 1, reason: `bid ${start}` });
  const script = new Map<number, Signal>([0, 1, 2, 3].map((i) => [T0 + i * MIN, limit(T0 + i * MIN)]));
  const r = await rig(t, { strategy: scripted('s', script) });
  await r.feed([bar('QQQ', T0, 10)]);
  assert.equal(r.loop.status().openOrders.length, 1);

  const report = await r.orders.kill();
  assert.equal(report.cancelled.length, 1);
  assert.deepEqual(await r.broker.openOrders(), []);
  assert.deepEqual(r.loop.status().openOrders, []);
  assert.equal(r.storage.orders.get(report.cancelled[0])?.state, 'cancelled');

  await r.feed([bar('QQQ', T0 + MIN, 10)]);
  const s = r.loop.status();
  assert.equal(s.risk.killed, true);
  assert.equal(s.counters.orders.refused.kill_switch, 1);
  assert.equal(s.lastDecisions.QQQ.detail, 'kill_switch: kill switch engaged');

  await r.orders.resume();
  await r.feed([bar('QQQ', T0 + 2 * MIN, 10)]);
  assert.equal(r.loop.status().openOrders.length, 1, 'orders flow again after resume');
});

test('kill with flatten closes every position with orders that pass the kill switch, and nothing else gets through', async (t) => {
  const script = new Map<number, Signal | Signal[]>([
    [T0, [{ kind: 'order', symbol: 'QQQ', side: 'buy', qty: 30, type: 'market', reason: 'long' }]],
    [T0 + 10, [{ kind: 'order', symbol: 'SPY', side: 'sell', qty: 20, type: 'market', reason: 'short' }]],
    [T0 + 2 * MIN, [{ kind: 'order', symbol: 'QQQ', side: 'buy', qty: 5, type: 'market', reason: 'after kill' }]],
  ]);
  const r = await rig(t, { strategy: scripted('s', script), slippageBps: 0 });
  await r.feed([bar('QQQ', T0, 10), bar('SPY', T0 + 10, 50), bar('QQQ', T0 + MIN, 11), bar('SPY', T0 + MIN + 10, 51)]);
  assert.equal(r.orders.position('QQQ'), 30);
  assert.equal(r.orders.position('SPY'), -20);

  const report = await r.orders.kill({ flatten: true });
  assert.deepEqual(
    report.flatten.map((d) => d.action),
    ['submitted', 'submitted'],
  );
  const flattens = r.storage.orders.all().filter((o) => o.strategy === 'flatten');
  assert.deepEqual(flattens.map((o) => [o.symbol, o.side, o.qty, o.reason]).sort(), [
    ['QQQ', 'sell', 30, 'kill switch: flatten'],
    ['SPY', 'buy', 20, 'kill switch: flatten'],
  ]);
  // Flattening orders are stamped with the kill time, so they fill at the first bar that opens after it.
  await r.feed([bar('QQQ', T0 + 2 * MIN, 12), bar('SPY', T0 + 2 * MIN + 10, 52)]);
  assert.equal(r.orders.position('QQQ'), 30);
  await r.feed([bar('QQQ', T0 + 3 * MIN, 12), bar('SPY', T0 + 3 * MIN + 10, 52)]);
  assert.equal(r.orders.position('QQQ'), 0);
  assert.equal(r.orders.position('SPY'), 0);
  assert.deepEqual(await r.broker.positions(), {});
  assert.equal(r.loop.status().counters.orders.refused.kill_switch, 1);
});

test('the kill switch stays engaged across a restart until resumed', async (t) => {
  const script = new Map<number, Signal>([[T0 + MIN, { kind: 'order', symbol: 'QQQ', side: 'buy', qty: 1, type: 'market', reason: 'x' }]]);
  const first = await rig(t, { strategy: scripted('s', script) });
  await first.orders.kill();
  await first.storage.close();
  const second = await rig(t, { dir: first.dir, strategy: scripted('s', script) });
  assert.equal(second.risk.killed, true);
  await second.feed([bar('QQQ', T0, 10), bar('QQQ', T0 + MIN, 10)]);
  assert.equal(second.loop.status().counters.orders.refused.kill_switch, 1);
  await second.orders.resume();
  await second.storage.close();
  const third = await rig(t, { dir: first.dir, strategy: scripted('s', script) });
  assert.equal(third.risk.killed, false);
});

test('bars handed in all at once are handled one at a time: a bar that needs no order waits behind one whose order is on its way', async (t) => {
  const strategy = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4, qty: 100 } });
  const r = await rig(t, { strategy });
  const bars = series('QQQ', T0, CLOSES);
  r.clock.set(bars[bars.length - 1].start + MIN);
  // No await between them: bar 4 sends the buy, bar 5 (no order: the target is met by the open
  // order) must not be decided before that order is known, or it would buy again.
  const handled = bars.map((b) => r.loop.onBar(b));
  await Promise.all(handled);
  await r.orders.idle();
  // With the queue empty, a stale bar is dropped at once, without a promise.
  assert.equal(r.loop.offer(bar('QQQ', bars[0].start, 99)), undefined);
  assert.equal(r.loop.status().counters.staleBars, 1);
  const journal = r.storage.orders.all();
  assert.deepEqual(
    journal.map((o) => [o.side, o.qty, o.barStart]),
    [
      ['buy', 100, bars[4].start],
      ['sell', 100, bars[6].start],
    ],
  );
  // The status words the strategy's last reason when asked.
  assert.match(r.loop.status().lastSignals.QQQ.reason, /fast SMA\(2\) 6\.0000 below slow SMA\(4\)/);
});
