/**
 * `barkeep backtest` as a user runs it: a child process over a real LMDB cache, a results folder
 * whose name has dots, the table, --json, the missing spans, and usage errors.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/serve.ts';
import { closesToBars, seedCache, tempDir, T0 } from '../backtest/support.ts';

const CLOSES = Array.from({ length: 60 }, (_, i) => 100 + 4 * Math.sin(i / 3));
const NYSE = 'sim:\n  session: nyse\n';

/** A temp folder with a bar cache (`data`) holding the 60 QQQ bars of CLOSES. */
async function seeded(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; data: string }> {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  await seedCache(data, closesToBars('QQQ', T0, CLOSES));
  return { dir, data };
}

/** `barkeep backtest --symbols QQQ --bar-size 1Min ARGS` over the cache in `data`, on the NYSE calendar. */
function backtest(data: string, args: string[]) {
  return runCli(['backtest', '--symbols', 'QQQ', '--bar-size', '1Min', ...args], { env: { BARKEEP_DATA_DIR: data }, yaml: NYSE });
}

test('barkeep backtest prints the metrics and digest, writes the results folder, and says which days the cache lacks', async (t) => {
  const { dir, data } = await seeded(t);
  const results = join(dir, 'my.results.v1');
  // From Friday 2026-05-29: the cache has nothing that day (the weekend is no gap).
  const r = await backtest(data, ['--from', '2026-05-29', '--to', '2026-06-01', '--param', 'fast=3', '--param', 'slow=5', '--results', results]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /missing: QQQ has no 1Min bars on 2026-05-29 \(1 day\)/);
  assert.doesNotMatch(r.stderr, /2026-05-30|2026-05-31|2026-06-01/);
  assert.match(r.stdout, /sma-crossover fast=3 slow=5 on QQQ 1Min/);
  assert.match(r.stdout, /final equity\s+[\d,]+\.\d\d/);
  assert.match(r.stdout, /Sharpe/);
  const digest = /digest ([0-9a-f]{16})/.exec(r.stdout)?.[1];
  assert.ok(digest, r.stdout);
  for (const f of ['report.json', 'trades.csv', 'orders.csv', 'fills.csv', 'daily.csv', 'equity.html']) assert.ok(existsSync(join(results, f)), f);
  const report = JSON.parse(readFileSync(join(results, 'report.json'), 'utf8'));
  assert.equal(report.digest, digest);
  assert.equal(report.bars, 60);
  const fills = readFileSync(join(results, 'fills.csv'), 'utf8').trim().split('\n');
  assert.equal(fills.length - 1, report.fills);
  assert.equal(readFileSync(join(results, 'trades.csv'), 'utf8').trim().split('\n').length - 1, report.trades + report.open_trades);
  const html = readFileSync(join(results, 'equity.html'), 'utf8');
  assert.match(html, /<svg[^>]*>[\s\S]*<polyline points="[\d., ]+"/);
  assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'the page is self-contained');

  const j = await backtest(data, ['--from', '2026-06-01', '--to', '2026-06-01', '--param', 'fast=3', '--param', 'slow=5', '--json', '--results', join(dir, 'again')]);
  assert.equal(j.code, 0, j.stderr);
  const one = JSON.parse(j.stdout);
  for (const k of ['final_equity', 'total_return', 'sharpe', 'max_drawdown', 'trades', 'digest', 'params']) assert.ok(k in one, k);
  assert.equal(one.digest, digest, 'the same bars and parameters give the same digest');
  assert.deepEqual(one.params, { fast: 3, slow: 5 });
  assert.equal(one.exits, null);
  assert.equal(one.calendar, 'nyse');

  // Protective exits from the command line: every entry is a bracket, and the report says so.
  const e = await backtest(data, [
    '--from',
    '2026-06-01',
    '--to',
    '2026-06-01',
    '--param',
    'fast=3',
    '--param',
    'slow=5',
    '--take-profit-pct',
    '0.5',
    '--stop-loss-pct',
    '1',
    '--json',
    '--results',
    join(dir, 'exits'),
  ]);
  assert.equal(e.code, 0, e.stderr);
  const bracketed = JSON.parse(e.stdout);
  assert.deepEqual(bracketed.exits, { stop_loss_pct: 1, take_profit_pct: 0.5 });
  assert.notEqual(bracketed.digest, digest, 'the exits changed the fills');
  const orders = readFileSync(join(dir, 'exits', 'orders.csv'), 'utf8');
  assert.match(orders, /^client_order_id,symbol,side,qty,type,limit_price,stop_price,tif,group_id,role,state,/);
  assert.match(orders, /,sell,100,limit,[\d.]+,,gtc,bk-sma-crossover-QQQ-\w+-0,take_profit,/);
  assert.match(orders, /,sell,100,stop,,[\d.]+,gtc,bk-sma-crossover-QQQ-\w+-0,stop_loss,filled,/);
});

test('barkeep backtest --grid --json prints one report per combination, a failed one with its error', async (t) => {
  const { dir, data } = await seeded(t);
  const r = await backtest(data, [
    '--from',
    '2026-06-01',
    '--to',
    '2026-06-01',
    '--grid',
    'fast=3:5:1',
    '--grid',
    'slow=5',
    '--workers',
    '2',
    '--sort',
    'total_return',
    '--json',
    '--results',
    join(dir, 'sweep'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 3);
  const failed = rows.filter((x: { ok: boolean }) => !x.ok);
  assert.equal(failed.length, 1, 'fast=5 slow=5 is not a valid crossover');
  assert.match(failed[0].error.message, /slow.*must be greater than fast/);
  assert.ok(rows.filter((x: { ok: boolean }) => x.ok).every((x: { digest: string }) => /^[0-9a-f]{16}$/.test(x.digest)));
  assert.ok(existsSync(join(dir, 'sweep', 'sweep.csv')));
});

test('barkeep backtest refuses bad arguments with exit 2 and names the option', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['backtest'], /--from is required/],
    [['backtest', '--from', 'yesterday'], /--from: "yesterday" is not/],
    [['backtest', '--from', '2026-06-01', '--bar-size', '2Min'], /--bar-size: "2Min"/],
    [['backtest', '--from', '2026-06-01', '--grid', 'fast=9:1:1'], /--grid fast/],
    [['backtest', '--from', '2026-06-01', '--sort', 'luck'], /--sort: "luck"/],
    [['backtest', '--from', '2026-06-01', '--symbols', 'qq q'], /--symbols/],
    [['backtest', '--from', '2026-06-01', '--stop-loss-pct', '150'], /--stop-loss-pct: must be a percent below 100/],
    [['backtest', '--from', '2026-06-01', '--no-exits', '--take-profit-pct', '2'], /--no-exits: cannot go with --take-profit-pct/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('barkeep backtest --fetch fills the missing spans through the collector (the simulated market here) with a progress line, then runs', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data.empty');
  const r = await runCli(['backtest', '--symbols', 'QQQ', '--bar-size', '5Min', '--from', '2026-06-01', '--to', '2026-06-02', '--fetch', '--json', '--results', join(dir, 'out')], {
    env: { BARKEEP_DATA_DIR: data },
    yaml: NYSE,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /fetching 1 missing span\(s\) from Simulated/);
  assert.match(r.stderr, /QQQ 5Min: 100% \(\d+ bars/);
  assert.doesNotMatch(r.stderr, /^missing:/m, 'nothing is missing after the fetch');
  const report = JSON.parse(r.stdout);
  assert.ok(report.bars > 2 * 78, `bars of two trading days, got ${report.bars}`);
});

test('barkeep backtest --train --json marks each combination train and ends with the winner run on the test part', async (t) => {
  const { dir, data } = await seeded(t);
  const r = await backtest(data, [
    '--from',
    '2026-06-01T10:00',
    '--to',
    '2026-06-01T11:00',
    '--grid',
    'fast=2,3',
    '--grid',
    'slow=5',
    '--train',
    '0.5',
    '--workers',
    '1',
    '--json',
    '--results',
    join(dir, 'split'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.deepEqual(
    rows.map((x: { split: string }) => x.split),
    ['train', 'train', 'test'],
  );
  assert.deepEqual(rows[2].params, rows[0].params, 'the test run is the best train combination');
  // The split is by time: 10:00-10:30 New York to choose on, 10:30-11:00 to test.
  assert.equal(rows[0].bars, 30);
  assert.equal(rows[2].bars, 30);
  assert.equal(rows[2].from, '2026-06-01T14:30:00.000Z');
});
