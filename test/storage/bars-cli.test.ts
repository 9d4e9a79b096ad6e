import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { barsCommand } from '../../src/cli/bars.ts';
import { openStorage, storagePath } from '../../src/storage/storage.ts';

// 2024-03-04 is a Monday in EST (UTC-5); bars from 09:30 New York = 14:30 UTC.
const T0 = Date.UTC(2024, 2, 4, 14, 30);
const MIN = 60_000;
let dataDir: string;

function bar(m: number, over: Partial<Bar> = {}): Bar {
  return {
    symbol: 'QQQ',
    barSize: '1Min',
    start: T0 + m * MIN,
    open: 430 + m,
    high: 431 + m,
    low: 429.5 + m,
    close: 430.25 + m,
    volume: 1000 + m,
    vwap: NaN,
    trades: -1,
    source: m % 2 ? 'alpaca' : 'massive',
    receivedAt: T0 + (m + 1) * MIN,
    ...over,
  };
}

before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-cli-'));
  const storage = openStorage({ path: storagePath(dataDir) });
  await storage.bars.putMany(Array.from({ length: 30 }, (_, m) => bar(m)));
  await storage.bars.put(bar(0, { barSize: '5Min', vwap: 430.5, trades: 77 }));
  await storage.close();
});
after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

async function run(argv: string[], dir = dataDir) {
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => (o += d));
  err.on('data', (d) => (e += d));
  const code = await barsCommand(argv, { dataDir: dir, out, err });
  return { code, out: o, err: e };
}

test('bars prints the newest bars as a table with New York and UTC times, OHLCV and source', async () => {
  const { code, out } = await run(['QQQ', '--bar-size', '1Min', '--limit', '3']);
  assert.equal(code, 0);
  const lines = out.trim().split('\n');
  assert.match(lines[0], /QQQ 1Min: 3 bars/);
  assert.match(lines[1], /time \(New York\)\s+time \(UTC\)\s+open\s+high\s+low\s+close\s+volume\s+source/);
  assert.equal(lines.length, 6);
  // minute 27 = 09:57 New York = 14:57 UTC, from alpaca (odd minute)
  assert.match(lines[3], /^2024-03-04 09:57 EST\s+2024-03-04 14:57Z\s+457\.00\s+458\.00\s+456\.50\s+457\.25\s+1027\s+alpaca$/);
  assert.match(lines[5], /09:59 EST .* 14:59Z/);
});

test('bars defaults to 1Min and 20 bars, and accepts a lower-case symbol', async () => {
  const { code, out } = await run(['qqq']);
  assert.equal(code, 0);
  assert.match(out, /QQQ 1Min: 20 bars/);
  assert.equal(out.trim().split('\n').length, 23);
});

test('bars --json prints the HTTP shape with nulls for what the source did not give', async () => {
  const { code, out } = await run(['QQQ', '--json', '--limit', '2']);
  assert.equal(code, 0);
  const body = JSON.parse(out);
  assert.equal(body.symbol, 'QQQ');
  assert.equal(body.bar_size, '1Min');
  assert.deepEqual(body.bars[1], { t: '2024-03-04T14:59:00.000Z', o: 459, h: 460, l: 458.5, c: 459.25, v: 1029, vw: null, n: null, source: 'alpaca' });
  const five = JSON.parse((await run(['QQQ', '--json', '--bar-size', '5Min'])).out);
  assert.equal(five.bars[0].vw, 430.5);
  assert.equal(five.bars[0].n, 77);
});

test('bars --from and --to select a range, in New York time unless an offset is given', async () => {
  const ny = JSON.parse((await run(['QQQ', '--json', '--from', '2024-03-04T09:35', '--to', '2024-03-04T09:37'])).out);
  assert.deepEqual(
    ny.bars.map((b: { t: string }) => b.t),
    ['2024-03-04T14:35:00.000Z', '2024-03-04T14:36:00.000Z', '2024-03-04T14:37:00.000Z'],
  );
  const utc = JSON.parse((await run(['QQQ', '--json', '--from', '2024-03-04T14:58:00Z'])).out);
  assert.equal(utc.bars.length, 2);
  const day = JSON.parse((await run(['QQQ', '--json', '--from', '2024-03-04', '--to', '2024-03-04', '--limit', '100'])).out);
  assert.equal(day.bars.length, 30);
  const upTo = JSON.parse((await run(['QQQ', '--json', '--to', String(T0 + 4 * MIN), '--limit', '2'])).out);
  assert.deepEqual(
    upTo.bars.map((b: { o: number }) => b.o),
    [433, 434],
  );
  const before = await run(['QQQ', '--to', '2024-03-01']);
  assert.equal(before.code, 1, 'no bars is exit 1, so a script can tell');
  assert.match(before.out, /no 1Min bars cached for QQQ in that range/);
});

test('bars with bad arguments names the option and exits 2', async () => {
  const cases: [string[], RegExp][] = [
    [[], /SYMBOL is missing/],
    [['QQQ', 'SPY'], /one SYMBOL expected/],
    [['Q Q'], /SYMBOL: "Q Q" is not a symbol/],
    [['QQQ', '--bar-size', '2Min'], /--bar-size: "2Min" is not one of/],
    [['QQQ', '--limit', '0'], /--limit: "0"/],
    [['QQQ', '--limit', 'ten'], /--limit: "ten"/],
    [['QQQ', '--from', 'yesterday'], /--from: "yesterday" is not/],
    [['QQQ', '--from', '2024-03-05', '--to', '2024-03-04'], /--from: it is after --to/],
    [['QQQ', '--frm', 'x'], /--frm/],
  ];
  for (const [argv, message] of cases) {
    const { code, out, err } = await run(argv);
    assert.equal(code, 2, `exit code for ${argv.join(' ')}`);
    assert.match(err, message);
    assert.match(err, /usage: barkeep bars/);
    assert.equal(out, '');
  }
});

test('bars on a data directory with no store says there are no bars and creates nothing', async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-cli-empty-'));
  try {
    const { code, out } = await run(['QQQ'], empty);
    assert.equal(code, 1, 'no bars is exit 1');
    assert.match(out, /no 1Min bars cached for QQQ/);
    assert.deepEqual(fs.readdirSync(empty), []);
    const json = JSON.parse((await run(['QQQ', '--json'], empty)).out);
    assert.deepEqual(json, { symbol: 'QQQ', bar_size: '1Min', bars: [] });
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
