import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BarAggregator, type FiveSecondBar } from '../../src/market/aggregate.ts';

const T0 = Date.UTC(2025, 0, 15, 14, 30, 0); // 09:30 New York

function five(start: number, o: number, h: number, l: number, c: number, volume: number, wap: number, count = 3): FiveSecondBar {
  return { start, open: o, high: h, low: l, close: c, volume, wap, count };
}

/** The 12 five-second bars of one minute, with prices that make every OHLC field distinct. */
function minuteOfFives(minuteStart: number, base: number): FiveSecondBar[] {
  const out: FiveSecondBar[] = [];
  for (let i = 0; i < 12; i++) {
    const o = base + i * 0.1;
    out.push(five(minuteStart + i * 5000, o, o + 0.5 + (i === 4 ? 2 : 0), o - 0.2 - (i === 7 ? 3 : 0), o + 0.05, 100 + i, o + 0.01, 2));
  }
  return out;
}

test('a minute bar is emitted when the 5-second bar that ends its interval arrives', () => {
  const agg = new BarAggregator({ symbol: 'QQQ', barSize: '1Min', source: 'ibkr-realtime' });
  const fives = minuteOfFives(T0, 100);
  for (const f of fives.slice(0, 11)) assert.deepEqual(agg.push(f, f.start + 5000), []);
  const out = agg.push(fives[11], T0 + 60_000);
  assert.equal(out.length, 1);
  const bar = out[0];
  assert.equal(bar.symbol, 'QQQ');
  assert.equal(bar.barSize, '1Min');
  assert.equal(bar.source, 'ibkr-realtime');
  assert.equal(bar.start, T0);
  assert.equal(bar.open, 100);
  assert.equal(bar.high, 100 + 0.4 + 0.5 + 2);
  assert.equal(bar.low, 100 + 0.7 - 0.2 - 3);
  assert.equal(bar.close, 100 + 1.1 + 0.05);
  const volume = fives.reduce((s, f) => s + f.volume, 0);
  assert.equal(bar.volume, volume);
  const vwap = fives.reduce((s, f) => s + f.wap * f.volume, 0) / volume;
  assert.ok(Math.abs(bar.vwap - vwap) < 1e-9);
  assert.equal(bar.trades, 24);
  assert.equal(bar.receivedAt, T0 + 60_000);
});

test('flush before the grace has passed keeps the bar open, after it emits the bar', () => {
  const agg = new BarAggregator({ symbol: 'SPY', barSize: '1Min', source: 'ibkr-realtime', graceMs: 3000 });
  for (const f of minuteOfFives(T0, 50).slice(0, 10)) agg.push(f, f.start + 5000);
  assert.deepEqual(agg.flush(T0 + 60_000), []);
  assert.deepEqual(agg.flush(T0 + 62_999), []);
  const out = agg.flush(T0 + 63_000);
  assert.equal(out.length, 1);
  assert.equal(out[0].start, T0);
  assert.equal(out[0].close, 50 + 0.9 + 0.05);
  assert.equal(out[0].receivedAt, T0 + 63_000);
  assert.deepEqual(agg.flush(T0 + 100_000), [], 'a bar is emitted once');
});

test('a late 5-second bar for an emitted interval is dropped and counted', () => {
  const agg = new BarAggregator({ symbol: 'SPY', barSize: '1Min', source: 'ibkr-realtime', graceMs: 0 });
  const fives = minuteOfFives(T0, 50);
  for (const f of fives.slice(0, 11)) agg.push(f, 0);
  const [bar] = agg.flush(T0 + 60_000);
  assert.equal(
    bar.volume,
    fives.slice(0, 11).reduce((s, f) => s + f.volume, 0),
  );
  assert.deepEqual(agg.push(fives[11], T0 + 61_000), []);
  assert.equal(agg.stats().late, 1);
  assert.equal(agg.stats().emitted, 1);
});

test('a 5-second bar of a later interval closes the open one', () => {
  const agg = new BarAggregator({ symbol: 'SPY', barSize: '1Min', source: 'ibkr-realtime' });
  const first = minuteOfFives(T0, 10);
  for (const f of first.slice(0, 6)) agg.push(f, 0);
  const out = agg.push(five(T0 + 60_000, 20, 21, 19, 20.5, 10, 20.2), 1);
  assert.equal(out.length, 1);
  assert.equal(out[0].start, T0);
  assert.equal(out[0].close, first[5].close);
  assert.equal(agg.pendingStart(), T0 + 60_000);
});

test('a repeated 5-second bar is counted once', () => {
  const agg = new BarAggregator({ symbol: 'SPY', barSize: '1Min', source: 'ibkr-realtime' });
  const fives = minuteOfFives(T0, 10);
  for (const f of fives.slice(0, 6)) agg.push(f, 0);
  agg.push(fives[5], 0);
  const out: ReturnType<BarAggregator['push']> = [];
  for (const f of fives.slice(6)) out.push(...agg.push(f, 0));
  assert.equal(out.length, 1);
  assert.equal(
    out[0].volume,
    fives.reduce((s, f) => s + f.volume, 0),
  );
  assert.equal(agg.stats().duplicates, 1);
});

test('five-minute bars aggregate sixty 5-second bars and emit at the interval end', () => {
  const agg = new BarAggregator({ symbol: 'AAPL', barSize: '5Min', source: 'ibkr-realtime' });
  const out = [];
  for (let m = 0; m < 10; m++) for (const f of minuteOfFives(T0 + m * 60_000, 200 + m)) out.push(...agg.push(f, 0));
  assert.deepEqual(
    out.map((b) => b.start),
    [T0, T0 + 300_000],
  );
  assert.equal(out[0].open, 200);
  assert.equal(out[1].open, 205);
  assert.equal(out[0].volume, 5 * minuteOfFives(T0, 0).reduce((s, f) => s + f.volume, 0));
});

test('vwap is NaN when no 5-second bar had volume, and trades are -1 when a count is unknown', () => {
  const agg = new BarAggregator({ symbol: 'AAPL', barSize: '1Min', source: 'ibkr-realtime', graceMs: 0 });
  agg.push(five(T0, 1, 1, 1, 1, 0, Number.NaN, 0), 0);
  agg.push(five(T0 + 5000, 1, 1, 1, 1, 0, 1, -1), 0);
  const [bar] = agg.flush(T0 + 60_000);
  assert.ok(Number.isNaN(bar.vwap));
  assert.equal(bar.trades, -1);
});

test('daily bars start at midnight New York time and complete through flush', () => {
  const agg = new BarAggregator({ symbol: 'AAPL', barSize: '1Day', source: 'ibkr-realtime', graceMs: 0 });
  agg.push(five(T0, 10, 11, 9, 10.5, 5, 10.2), 0);
  agg.push(five(T0 + 3600_000, 10.5, 12, 10, 11, 5, 11), 0);
  const midnightNy = Date.UTC(2025, 0, 15, 5, 0, 0); // EST is UTC-5
  assert.deepEqual(agg.flush(midnightNy + 86_400_000 - 1), []);
  const [bar] = agg.flush(midnightNy + 86_400_000);
  assert.equal(bar.start, midnightNy);
  assert.equal(bar.high, 12);
  assert.equal(bar.close, 11);
});

test('a negative grace is refused with a message naming the field', () => {
  assert.throws(() => new BarAggregator({ symbol: 'A', barSize: '1Min', source: 'sim', graceMs: -1 }), /graceMs/);
});
