import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Signal } from '../../src/actors/trader/strategies/contract.ts';
import { createStrategy } from '../../src/actors/trader/strategies/registry.ts';
import type { StrategyError } from '../../src/actors/trader/strategies/strategy-error.ts';
import { RollingWindow } from '../../src/actors/trader/strategies/rolling-window.ts';
import { series, T0 } from './support.ts';

const ctx = { position: 0, cash: 100_000, now: T0 };

function targets(out: Array<Signal | Signal[] | undefined>): Array<number | undefined> {
  return out.map((s) => (s === undefined ? undefined : Array.isArray(s) ? NaN : s.kind === 'target' ? s.targetQty : NaN));
}

test('sma-crossover holds qty long while the fast average is above the slow one and goes flat otherwise', async () => {
  const s = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4, qty: 100 } });
  const bars = series('QQQ', T0, [10, 10, 10, 10, 12, 14, 8, 6]);
  const out = bars.map((b) => s.onBar('QQQ', b, ctx));
  assert.deepEqual(targets(out), [undefined, undefined, undefined, 0, 100, 100, 0, 0]);
  const fifth = out[4] as Signal;
  assert.equal(fifth.symbol, 'QQQ');
  assert.match(fifth.reason, /fast SMA\(2\) 11\.0000 above slow SMA\(4\) 10\.5000/);
});

test('sma-crossover goes short below the slow average when shorting is allowed', async () => {
  const s = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4, qty: 50, allowShort: true } });
  const out = series('QQQ', T0, [10, 10, 10, 10, 12, 14, 8, 6]).map((b) => s.onBar('QQQ', b, ctx));
  assert.deepEqual(targets(out), [undefined, undefined, undefined, 0, 50, 50, 0, -50]);
});

test('warm-up bars fill the averages so the first live bar already yields a target', async () => {
  const s = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4 } });
  const bars = series('SPY', T0, [10, 10, 10, 10, 12]);
  s.warmUp('SPY', bars.slice(0, 4));
  const sig = s.onBar('SPY', bars[4], ctx) as Signal;
  assert.equal(sig.kind === 'target' && sig.targetQty, 100);
});

test('sma-crossover treats averages equal in cents as a tie, whatever bars came before the window', async () => {
  // (110.76 + 107.53) / 2 = (110.13 + 108.16 + 110.76 + 107.53) / 4 = 109.145 exactly; in floating
  // point the fast mean came out above the slow one, so a tie was traded as a cross.
  const tail = [110.13, 108.16, 110.76, 107.53];
  for (const before of [[], [105], [103.5, 108.68, 103.57]]) {
    const s = await createStrategy({ name: 'sma-crossover', params: { fast: 2, slow: 4, qty: 100, allowShort: true } });
    const out = series('QQQ', T0, [...before, ...tail]).map((b) => s.onBar('QQQ', b, ctx));
    const last = out[out.length - 1] as Signal;
    assert.equal(last.kind === 'target' && last.targetQty, 0, `after ${before.length} earlier bars`);
    assert.match(last.reason, /109\.1450 equal to slow SMA\(4\) 109\.1450/);
  }
});

test('symbols keep separate state inside one strategy', async () => {
  const s = await createStrategy({ name: 'sma-crossover', params: { fast: 1, slow: 2 } });
  const up = series('AAA', T0, [10, 11]);
  const down = series('BBB', T0, [10, 9]);
  s.onBar('AAA', up[0], ctx);
  s.onBar('BBB', down[0], ctx);
  assert.deepEqual(targets([s.onBar('AAA', up[1], ctx), s.onBar('BBB', down[1], ctx)]), [100, 0]);
});

test('mean-reversion buys a close far below its mean, has no opinion in between, and exits near the mean', async () => {
  const s = await createStrategy({ name: 'mean-reversion', params: { window: 5, entryZ: 1.5, exitZ: 0.45, qty: 100 } });
  const out = series('QQQ', T0, [10, 10, 10, 10, 10, 7, 8.5, 9.5]).map((b) => s.onBar('QQQ', b, ctx));
  assert.deepEqual(targets(out), [undefined, undefined, undefined, undefined, 0, 100, undefined, 0]);
  assert.match((out[5] as Signal).reason, /z-score -2\.00/);
});

test('bad params are refused with an error that names the param', async () => {
  await assert.rejects(createStrategy({ name: 'sma-crossover', params: { fast: 30, slow: 10 } }), (err: StrategyError) => {
    assert.equal(err.code, 'STRATEGY_PARAMS');
    assert.match(err.message, /param "slow": must be greater than fast/);
    return true;
  });
  await assert.rejects(createStrategy({ name: 'sma-crossover', params: { fast: 'ten' } }), /param "fast"/);
  await assert.rejects(createStrategy({ name: 'mean-reversion', params: { windw: 3 } }), /unknown param "windw"/);
});

test('an unknown strategy name is refused with the list of built-ins', async () => {
  await assert.rejects(createStrategy({ name: 'martingale' }), (err: StrategyError) => {
    assert.equal(err.code, 'STRATEGY_UNKNOWN');
    assert.match(err.message, /sma-crossover, mean-reversion/);
    return true;
  });
});

test("a user's strategy is loaded from a module path relative to the working directory, with its params", async () => {
  const s = await createStrategy({ name: 'mine', module: 'test/fixtures/user-strategy.ts', params: { qty: 7 } });
  assert.equal(s.name, 'user-momentum');
  const bars = series('QQQ', T0, [10, 11]);
  s.onBar('QQQ', bars[0], ctx);
  assert.deepEqual(targets([s.onBar('QQQ', bars[1], ctx)]), [7]);
  const abs = await createStrategy({ name: 'mine', module: path.resolve('test/fixtures/user-strategy.ts') });
  assert.equal(abs.name, 'user-momentum');
});

test('a module that is missing or exports no factory is refused with STRATEGY_MODULE', async () => {
  await assert.rejects(createStrategy({ name: 'x', module: 'test/fixtures/no-such-strategy.ts' }), (err: StrategyError) => err.code === 'STRATEGY_MODULE' && /could not be loaded/.test(err.message));
  await assert.rejects(createStrategy({ name: 'x', module: 'test/trader/support.ts' }), (err: StrategyError) => err.code === 'STRATEGY_MODULE' && /default-export/.test(err.message));
});

test('the rolling window keeps an exact mean and deviation as it wraps many times', () => {
  const w = new RollingWindow(3);
  for (let i = 0; i < 10_000; i++) w.push(1e6 + (i % 7));
  // last three values: i = 9997, 9998, 9999 -> 1e6 + 1, 2, 3
  assert.equal(w.mean(), 1e6 + 2);
  assert.ok(Math.abs(w.stdDev() - Math.sqrt(2 / 3)) < 1e-6);
});
