/**
 * `barkeep backfill` end to end: the collector actor in a worker thread (started by the command's
 * own Supervisor), the simulated market with no keys, the bars checked in the LMDB store after.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { backfillCommand } from '../../src/cli/backfill.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { formatDay, parseDay } from '../../src/market/calendar-data.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { actorConfigs } from '../../src/config/actor-configs.ts';
import { SimMarket } from '../../src/sources/sim/market.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { startFakeMassive } from '../fakes/massive/server.ts';

const calendar = new MarketCalendar();
const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempConfig(env: NodeJS.ProcessEnv = {}): Config {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-backfill-'));
  dirs.push(dir);
  return loadConfig({ env, overrides: { data_dir: dir } });
}

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += String(chunk);
    done();
  }
}

async function backfill(argv: string[], config: Config, tty = false) {
  const out = new Capture();
  const err = new Capture(tty);
  const code = await backfillCommand(argv, { config, out, err });
  return { code, out: out.text, err: err.text };
}

async function cachedBars(config: Config, symbol: string, size: BarSize): Promise<Bar[]> {
  const storage = openStorage({ path: actorConfigs(config).collector.dataDir });
  try {
    return storage.bars.range(symbol, size, 0, Number.MAX_SAFE_INTEGER);
  } finally {
    await storage.close();
  }
}

/** What the simulated market of this config serves over [from, to). */
function simBars(config: Config, symbol: string, size: BarSize, from: number, to: number): Promise<Bar[]> {
  const market = new SimMarket({ seed: config.sim.seed, session: config.sim.session, calendar, clock: new ManualClock(Date.now()) });
  return market.fetchBars(symbol, size, from, to);
}

const values = (bars: Bar[]) => bars.map(({ receivedAt: _r, ...rest }) => rest);
const daysAgo = (n: number) => formatDay(parseDay(calendar.dateOf(Date.now()))! - n);

describe('barkeep backfill', () => {
  test('fills the cache from the simulated market over whole New York days, with progress lines and a summary', async () => {
    const config = tempConfig();
    const from = daysAgo(3);
    const through = daysAgo(2);
    const r = await backfill(['qqq', '--from', from, '--to', through], config);
    assert.equal(r.code, 0, r.err);

    const expected = await simBars(config, 'QQQ', '1Min', calendar.dayStart(from), calendar.dayStart(daysAgo(1)));
    assert.ok(expected.length >= 2 * 1380, 'two days of minutes');
    assert.deepEqual(values(await cachedBars(config, 'QQQ', '1Min')), values(expected));
    assert.match(r.out, new RegExp(`^backfilled QQQ 1Min: ${expected.length} bars written, ${new Date(calendar.dayStart(from)).toISOString()} \\.\\. `));
    assert.match(r.out, /\(Simulated\)\n$/);
    assert.match(r.err, /\(source: Simulated\)\n/);
    assert.match(r.err, /^QQQ 1Min: 100% \(\d+ bars, through /m, 'plain progress lines when stderr is not a terminal');
    assert.ok(!r.err.includes('\r'), 'no carriage returns off a terminal');
  });

  test('draws a progress bar on a terminal; --to defaults to now and --bar-size is honoured', async () => {
    const config = tempConfig();
    const from = Date.now() - 6 * 3_600_000;
    const r = await backfill(['SPY', '--from', new Date(from).toISOString(), '--bar-size', '5Min'], config, true);
    assert.equal(r.code, 0, r.err);
    assert.ok(r.err.includes(`\r\x1b[KSPY 5Min [${'#'.repeat(30)}] 100%`), 'a full bar redrawn in place');
    const stored = await cachedBars(config, 'SPY', '5Min');
    assert.ok(stored.length >= 70, 'about six hours of 5-minute bars');
    const expected = await simBars(config, 'SPY', '5Min', from, stored.at(-1)!.start + 5 * 60_000);
    assert.deepEqual(values(stored), values(expected));
    assert.ok(Date.now() - stored.at(-1)!.start < 60 * 60_000, 'up to about now');
  });

  test('bad arguments exit 2 and name the option', async () => {
    const config = tempConfig();
    const cases: Array<[string[], RegExp]> = [
      [['QQQ'], /--from is required/],
      [['QQQ', '--from', '2026-02-30'], /--from: "2026-02-30" is not/],
      [['QQQ', '--from', 'yesterday'], /--from: "yesterday" is not/],
      [['QQQ', '--from', daysAgo(2), '--to', 'soon'], /--to: "soon" is not/],
      [['QQQ', '--from', daysAgo(2), '--to', daysAgo(5)], /--from: it is not before --to/],
      [['QQQ', '--from', daysAgo(2), '--bar-size', '2Min'], /--bar-size: "2Min" is not one of/],
      [['--from', daysAgo(2)], /SYMBOL is missing/],
      [['not a symbol', '--from', daysAgo(2)], /SYMBOL: "not a symbol" is not a symbol/],
      [['QQQ', '--from', daysAgo(2), '--frm', 'x'], /--frm/],
    ];
    for (const [argv, message] of cases) {
      const r = await backfill(argv, config);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, message, argv.join(' '));
      assert.match(r.err, /usage: barkeep backfill SYMBOL --from TIME/);
    }
    assert.ok(!fs.existsSync(path.join(config.data_dir, 'data.mdb')) && !fs.existsSync(path.join(config.data_dir, 'lmdb')), 'nothing was started');
  });

  test('a refused vendor key fails the backfill with exit 1 and the reason, never the key', async () => {
    const fake = await startFakeMassive({ validKeys: ['the-right-key'], generate: true });
    try {
      const key = 'wrong-massive-key-4242';
      const config = tempConfig({ MASSIVE_API_KEY: key, MASSIVE_REST_URL: fake.url });
      const r = await backfill(['QQQ', '--from', daysAgo(2)], config);
      assert.equal(r.code, 1);
      assert.match(r.err, /\(source: Massive API\)\n/);
      assert.match(r.err, /barkeep backfill: failed after 0 bars .*HTTP 401/);
      assert.ok(!r.err.includes(key) && !r.out.includes(key));
      assert.equal(fake.requests, 1, 'a refused key is not retried');
    } finally {
      await fake.close();
    }
  });

  test("it neither resumes nor overwrites the server collector's checkpoint", async () => {
    const config = tempConfig();
    const dir = actorConfigs(config).collector.dataDir;
    const serverState = { running: true, symbols: ['IWM'], barSize: '1Min', coveredUntil: {}, lastCollection: {}, active: 0 };
    const storage = openStorage({ path: dir });
    await storage.checkpoints.put('collector', serverState);
    await storage.close();

    const r = await backfill(['QQQ', '--from', daysAgo(1), '--to', daysAgo(1)], config);
    assert.equal(r.code, 0, r.err);
    const after = openStorage({ path: dir });
    try {
      assert.deepEqual(after.checkpoints.get('collector'), serverState);
      assert.deepEqual(after.bars.symbols(), ['QQQ'], 'the server collector’s symbols were not collected');
    } finally {
      await after.close();
    }
  });
});
