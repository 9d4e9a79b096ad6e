/**
 * POST /backtests and GET /backtests[/{id}] on a real `barkeep serve` (child process, port 0) over
 * a cache seeded with known bars: a backtest and a sweep run on the pool and report progress, then
 * metrics and the equity curve; bad bodies get a 400 naming the field.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Served, serve, until } from '../helpers/serve.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { closesToBars, seedCache, T0 } from '../backtest/support.ts';

const CLOSES = Array.from({ length: 60 }, (_, i) => 100 + 4 * Math.sin(i / 3));

// One server for both tests: starting one is the slow part.
let server: Served;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'barkeep-backtests-http-'));
  const data = join(dir, 'data');
  await seedCache(data, closesToBars('AAPL', T0, CLOSES));
  server = await serve({ env: { BARKEEP_DATA_DIR: data } });
});
after(async () => {
  await server?.[Symbol.asyncDispose]();
  rmSync(dir, { recursive: true, force: true });
});

test('POST /backtests runs a backtest and a sweep on the pool; GET gives progress, then metrics and the equity curve', async () => {
  const started = await server.post('/backtests', { symbols: ['AAPL'], bar_size: '1Min', from: '2026-06-01', to: '2026-06-01', strategy: 'sma-crossover', params: { fast: 3, slow: 5 } });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.match(started.body.id, /^bt-/);
  assert.equal(started.body.kind, 'backtest');
  const done = await until(async () => {
    const r = await server.get(`/backtests/${started.body.id}`);
    return r.body.state !== 'running' && r.body;
  }, 'the backtest to finish');
  assert.equal(done.state, 'done', JSON.stringify(done.error));
  assert.deepEqual(done.progress, { done: 60, total: 60, fraction: 1 });
  const rep = done.report;
  assert.equal(rep.bars, 60);
  assert.equal(rep.equity_curve.length, 60);
  assert.ok(rep.equity_curve.every((p: { time: string; equity: number }) => typeof p.time === 'string' && Number.isFinite(p.equity)));
  for (const k of ['final_equity', 'total_return', 'sharpe', 'sortino', 'max_drawdown', 'win_rate', 'profit_factor', 'exposure', 'turnover', 'commissions', 'trades', 'digest']) assert.ok(k in rep, k);
  assert.ok(rep.per_symbol.AAPL);
  assert.equal(rep.trade_list.length, rep.trades + rep.open_trades);

  const sweep = await server.post('/backtests', {
    symbols: ['AAPL'],
    bar_size: '1Min',
    from: '2026-06-01',
    to: '2026-06-01',
    strategy: 'sma-crossover',
    grid: { fast: '2:4:1', slow: [5, 6] },
    sort: 'total_return',
  });
  assert.equal(sweep.status, 202, JSON.stringify(sweep.body));
  const swept = await until(async () => {
    const r = await server.get(`/backtests/${sweep.body.id}`);
    return r.body.state !== 'running' && r.body;
  }, 'the sweep to finish');
  assert.equal(swept.state, 'done', JSON.stringify(swept.error));
  assert.equal(swept.combinations.length, 6);
  assert.equal(swept.progress.done, 6);
  const returns = swept.combinations.map((c: { metrics: { total_return: number } }) => c.metrics.total_return);
  assert.deepEqual(
    returns,
    [...returns].sort((a: number, b: number) => b - a),
    'best first',
  );
  assert.deepEqual(swept.report.params, swept.combinations[0].params);
  assert.equal(swept.report.digest, swept.combinations[0].metrics.digest);

  const list = await server.get('/backtests');
  assert.deepEqual(
    list.body.backtests.map((b: { id: string }) => b.id),
    [sweep.body.id, started.body.id],
  );
  assert.equal(list.body.backtests[1].metrics.digest, rep.digest);
  assert.equal((await server.get('/backtests/bt-nope')).status, 404);
});

test('POST /backtests refuses a bad body with a 400 naming the field, and takes a partial one with the defaults', async () => {
  const cases: Array<[unknown, string]> = [
    [{}, 'from'],
    [{ from: 'yesterday' }, 'from'],
    [{ from: '2026-06-01', symbols: ['AAPL', 'qq q'] }, 'symbols.1'],
    [{ from: '2026-06-01', bar_size: '2Min' }, 'bar_size'],
    [{ from: '2026-06-01', cash: -5 }, 'cash'],
    [{ from: '2026-06-01', colour: 'red' }, 'colour'],
    [{ from: '2026-06-01', grid: { fast: '9:1:1' } }, 'grid'],
    [{ from: '2026-06-01', sort: 'luck' }, 'sort'],
    [{ from: '2026-06-01', train: 0.5 }, 'train'],
    [{ from: '2026-06-02', to: '2026-06-01' }, 'from'],
    [{ from: '2026-06-01', exits: { stop_loss_pct: 0 } }, 'exits.stop_loss_pct'],
    [{ from: '2026-06-01', exits: { stop_loss_pct: 1, trailing_stop_pct: 1 } }, 'exits.trailing_stop_pct'],
    [{ from: '2026-06-01', exits: { stop: 1 } }, 'exits.stop'],
    [{ from: '2026-06-01', calendar: 'lse' }, 'calendar'],
  ];
  for (const [body, field] of cases) {
    const r = await server.post('/backtests', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.field, field, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
  }
  const partial = await server.post('/backtests', { symbols: ['AAPL'], from: '2026-06-01', to: '2026-06-01', bar_size: '1Min', exits: { take_profit_pct: 1.5 } });
  assert.equal(partial.status, 202);
  const done = await until(async () => {
    const r = await server.get(`/backtests/${partial.body.id}`);
    return r.body.state !== 'running' && r.body;
  }, 'the backtest to finish');
  assert.equal(done.state, 'done', JSON.stringify(done.error));
  assert.equal(done.request.strategy, 'sma-crossover', 'the config trader strategy by default');
  // Default sma-crossover needs 30 bars before its first signal; it still ran over all 60.
  assert.equal(done.report.bars, 60);
  assert.deepEqual(done.report.exits, { take_profit_pct: 1.5 }, 'the exits asked for are in the report');
});
