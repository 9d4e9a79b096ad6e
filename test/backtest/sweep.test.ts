/**
 * Sweeps on the real piscina pool (worker threads that load the TypeScript task through tsx and
 * read LMDB themselves): the same inputs give the same trade digest alone and inside a sweep on
 * several workers, and a combination whose strategy throws fails alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BacktestPool, createPool } from '../../src/backtest/pool.ts';
import { runSpec } from '../../src/backtest/run.ts';
import { parseGrid, runSweep } from '../../src/backtest/sweep.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { closesToBars, MIN, seedCache, spec, T0, tempDir } from './support.ts';

const MOODY = fileURLToPath(new URL('../fixtures/backtest-moody-strategy.ts', import.meta.url));
/** A zigzag with a drift, 120 bars: enough crossings for every combination to trade. */
const closes = Array.from({ length: 120 }, (_, i) => 100 + i * 0.05 + 3 * Math.sin(i / 4) + (i % 7) * 0.3);

test('the same inputs give the same trade digest alone and inside a sweep on two workers', async (t) => {
  const dir = tempDir(t);
  await seedCache(dir, [
    ...closesToBars('QQQ', T0, closes),
    ...closesToBars(
      'SPY',
      T0,
      closes.map((c) => 2 * c - 50),
    ),
  ]);
  const base = spec({ symbols: ['QQQ', 'SPY'], to: T0 + 120 * MIN, risk: { allowedSessions: ['always'] } });
  const pool = createPool(2);
  t.after(() => pool.close());

  const result = await runSweep({ pool, base, axes: [parseGrid('fast=2:4:1'), parseGrid('slow=6,9')], source: { dataDir: dir, sourcePrecedence: ['sim'] }, sort: 'sharpe' });
  assert.equal(result.rows.length, 6);
  assert.ok(result.rows.every((r) => r.ok));
  assert.ok(Object.keys(result.heap_mib).length >= 2, `the sweep ran on ${Object.keys(result.heap_mib).length} worker(s), expected 2`);
  // Each worker says how much CPU its thread has had (the benchmark's breakdown of a sweep's cores).
  assert.deepEqual(Object.keys(result.cpu).sort(), Object.keys(result.heap_mib).sort());
  if (process.platform === 'linux') {
    for (const c of Object.values(result.cpu)) assert.ok(c !== null && c.run_ms > 0 && c.wait_ms >= 0, JSON.stringify(c));
  }

  const storage = openStorage({ path: dir });
  t.after(() => storage.close());
  const digests = new Set<string>();
  for (const row of result.rows) {
    const alone = await runSpec({ ...base, params: row.params }, storage.bars);
    assert.equal(row.report!.digest, alone.report.digest, `params ${JSON.stringify(row.params)}`);
    assert.equal(row.report!.final_equity, alone.report.final_equity);
    digests.add(alone.report.digest);
  }
  assert.ok(digests.size > 1, 'different parameters trade differently (the digest is not constant)');
  // Sorted best first by Sharpe; the best combination's full report came back from the pool too.
  const sharpes = result.rows.map((r) => r.report!.sharpe ?? -Infinity);
  assert.deepEqual(
    sharpes,
    [...sharpes].sort((a, b) => b - a),
  );
  assert.equal(result.best!.report.digest, result.rows[0].report!.digest);
  assert.ok(result.best!.detail.fills.length > 0);
});

test('on two workers the best combination so far is run with its detail while the other worker finishes the grid, and the winner is the one returned', async (t) => {
  const dir = tempDir(t);
  await seedCache(dir, closesToBars('QQQ', T0, closes));
  const base = spec({ to: T0 + 120 * MIN, risk: { allowedSessions: ['always'] } });
  const pool = createPool(2);
  t.after(() => pool.close());
  const events: string[] = [];
  const detailParams: Array<Record<string, unknown>> = [];
  const watched: BacktestPool = {
    workers: pool.workers,
    close: () => pool.close(),
    async run(task) {
      if (task.detail) {
        detailParams.push(task.spec.params);
        events.push('detail run');
      } else {
        events.push(`sent ${events.filter((e) => e.startsWith('sent')).length + 1}`);
      }
      return pool.run(task);
    },
  };
  const result = await runSweep({
    pool: watched,
    base,
    axes: [parseGrid('fast=2:4:1'), parseGrid('slow=6,9')],
    source: { dataDir: dir, sourcePrecedence: ['sim'] },
    sort: 'total_return',
    onProgress: (done) => events.push(`${done} done`),
  });
  // Sent to the pool before the last combination: one worker runs it while the other runs that one,
  // rather than alone at the end.
  assert.ok(events.indexOf('detail run') >= 0 && events.indexOf('detail run') < events.indexOf('sent 6'), `events: ${events.join(', ')}`);
  // One detail run when the early leader won, two when the last combination beat it; the one kept is the winner's.
  assert.ok(detailParams.length === 1 || detailParams.length === 2);
  assert.deepEqual(result.best!.report.params, result.rows[0].params);
  assert.equal(result.best!.report.digest, result.rows[0].report!.digest);
  assert.deepEqual(detailParams.at(-1), result.rows[0].params);
});

test('a combination whose strategy throws is reported failed and the other combinations complete', async (t) => {
  const dir = tempDir(t);
  await seedCache(dir, closesToBars('QQQ', T0, closes));
  const base = spec({ to: T0 + 120 * MIN, strategy: 'moody', strategy_module: MOODY, params: {}, risk: { allowedSessions: ['always'] } });
  const pool = createPool(2);
  t.after(() => pool.close());

  const result = await runSweep({ pool, base, axes: [parseGrid('mood=good,bad,fine'), parseGrid('qty=5,10')], source: { dataDir: dir, sourcePrecedence: ['sim'] }, sort: 'final_equity' });
  const failed = result.rows.filter((r) => !r.ok);
  assert.deepEqual(
    failed.map((r) => r.params.mood),
    ['bad', 'bad'],
  );
  for (const r of failed) {
    assert.equal(r.error!.code, 'BACKTEST_STRATEGY_FAILED');
    assert.match(r.error!.message, /bad mood at bar 10/);
  }
  const ok = result.rows.filter((r) => r.ok);
  assert.equal(ok.length, 4);
  assert.ok(ok.every((r) => r.report!.bars === 120 && r.report!.orders > 0));
  assert.deepEqual(
    result.rows.slice(-2).map((r) => r.ok),
    [false, false],
    'failed combinations sort last',
  );
});

test('a train/test split chooses on the first part and reports the choice on the rest', async (t) => {
  const dir = tempDir(t);
  await seedCache(dir, closesToBars('QQQ', T0, closes));
  const base = spec({ to: T0 + 120 * MIN, risk: { allowedSessions: ['always'] } });
  const pool = createPool(1);
  t.after(() => pool.close());
  const result = await runSweep({ pool, base, axes: [parseGrid('fast=2:3:1'), parseGrid('slow=5,8')], source: { dataDir: dir, sourcePrecedence: ['sim'] }, sort: 'total_return', train: 0.75 });
  assert.deepEqual(result.train, { from: T0, to: T0 + 90 * MIN });
  assert.equal(result.rows[0].report!.bars, 90);
  assert.equal(result.test!.report.bars, 30);
  assert.deepEqual(result.test!.report.params, result.rows[0].params);
  assert.equal(result.test!.report.from, new Date(T0 + 90 * MIN).toISOString());
});
