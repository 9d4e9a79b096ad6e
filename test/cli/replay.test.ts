/**
 * `barkeep replay` as a user runs it, over a data directory holding bars and the arbiter's record
 * of what it handed the trader (written here through the same DeliveryLog the arbiter uses).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openStorage } from '../../src/storage/storage.ts';
import { closesToBars, MIN, tempDir, T0 } from '../backtest/support.ts';
import { runCli } from '../helpers/serve.ts';

const CLOSES = [100, 100, 100, 100, 100, 101, 102, 103, 104, 105, 104, 103, 102, 101, 100];

test('barkeep replay shows each handed-on bar with its rung, what the strategy said and why, and what became of it', async (t) => {
  const dir = tempDir(t);
  const data = join(dir, 'data');
  const s = openStorage({ path: data });
  await s.bars.putMany(closesToBars('QQQ', T0, CLOSES));
  // The trader was handed bars 3..14; bars 3..9 from the cache, 10..14 from IBKR real-time bars.
  for (let i = 3; i < CLOSES.length; i++) s.deliveries.record({ symbol: 'QQQ', barSize: '1Min', start: T0 + i * MIN, rung: i < 10 ? 'cache' : 'ibkr-realtime', source: 'sim', at: T0 + (i + 1) * MIN });
  await s.deliveries.flushed();
  await s.close();

  const yaml = 'sim:\n  session: nyse\nfeed:\n  preload_bars: 3\ntrader:\n  strategy: sma-crossover\n  strategy_params: { fast: 2, slow: 3, qty: 5 }\n';
  const r = await runCli(['replay', '--from', '2026-06-01', '--to', '2026-06-01'], { env: { BARKEEP_DATA_DIR: data }, yaml });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /replay of 12 1Min bars/);
  assert.equal(lines.length, 13);
  assert.match(lines[1], /^2026-06-01 10:03 NY\s+QQQ\s+cache\s+close 100\s+\| target 0: fast SMA\(2\) 100\.0000 equal to slow SMA\(3\) 100\.0000 -> no order/);
  // Bar 5 (close 101): fast 100.5 > slow 100.33: buy 5, sent, filled at bar 6's open; no live order has that id.
  assert.match(
    lines[3],
    /10:05 NY\s+QQQ\s+cache\s+close 101\s+\| target 5: fast SMA\(2\) 100\.5000 above slow SMA\(3\) 100\.3333 -> buy 5 QQQ sent; filled at [\d.]+ \[bk-sma-crossover-QQQ-[0-9a-z]+-0\]; live: no such order/,
  );
  assert.match(lines[8], /10:10 NY\s+QQQ\s+ibkr-realtime/);

  const j = await runCli(['replay', '--from', '2026-06-01', '--to', '2026-06-01', '--json'], { env: { BARKEEP_DATA_DIR: data }, yaml });
  assert.equal(j.code, 0, j.stderr);
  const out = JSON.parse(j.stdout);
  assert.equal(out.rows.length, 12);
  assert.deepEqual(out.params, { fast: 2, slow: 3, qty: 5 }, "the file's strategy_params replace the defaults whole: a strategy's params are its own");

  const none = await runCli(['replay', '--from', '2026-06-02', '--to', '2026-06-02'], { env: { BARKEEP_DATA_DIR: data }, yaml });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no 1Min bars were handed to the trader/);
});
