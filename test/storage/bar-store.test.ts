import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, describe, test } from 'node:test';
import type { Bar, BarSource } from '../../src/market/bar.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { createBarColumns, createBarView, sourceOfCode } from '../../src/storage/bar-codec.ts';
import { BarValidationError, type DivergenceEvent } from '../../src/storage/bar-store.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import { waitFor } from '../helpers/wait.ts';

const T0 = Date.UTC(2024, 2, 4, 14, 30); // a Monday, 09:30 New York
const MIN = 60_000;
const DAY = 86_400_000;

const dirs: string[] = [];
const opened: Storage[] = [];
after(async () => {
  for (const s of opened) await s.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempStorage(opts: Omit<Parameters<typeof openStorage>[0], 'path'> = {}): Storage {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-store-'));
  dirs.push(dir);
  const s = openStorage({ path: dir, ...opts });
  opened.push(s);
  return s;
}

function bar(over: Partial<Bar> = {}): Bar {
  return {
    symbol: 'QQQ',
    barSize: '1Min',
    start: T0,
    open: 430.1,
    high: 430.9,
    low: 429.8,
    close: 430.5,
    volume: 15_230,
    vwap: 430.37,
    trades: 211,
    source: 'massive',
    receivedAt: T0 + 61_234,
    ...over,
  };
}

function minutes(n: number, over: Partial<Bar> = {}, from = 0): Bar[] {
  return Array.from({ length: n }, (_, i) => bar({ start: T0 + (from + i) * MIN, close: 430 + ((from + i) % 90) / 100, ...over }));
}

describe('round trip and ordering', () => {
  test('every field of a bar comes back as written, through get, readInto and latest', async () => {
    const s = tempStorage();
    const written = bar({ symbol: 'BRK.B', barSize: '5Min', start: T0 + 5 * MIN, volume: 0.5, source: 'ibkr-historical' });
    await s.bars.put(written);
    assert.deepEqual(s.bars.get('BRK.B', '5Min', T0 + 5 * MIN), written);
    assert.deepEqual(s.bars.latest('BRK.B', '5Min'), written);
    const view = createBarView();
    assert.equal(s.bars.readInto('BRK.B', '5Min', T0 + 5 * MIN, view), true);
    assert.deepEqual(view, {
      start: written.start,
      open: written.open,
      high: written.high,
      low: written.low,
      close: written.close,
      volume: written.volume,
      vwap: written.vwap,
      trades: written.trades,
      sourceCode: 4,
      receivedAt: written.receivedAt,
    });
  });

  test('a bar without vwap or trade count keeps NaN and -1', async () => {
    const s = tempStorage();
    await s.bars.put(bar({ vwap: NaN, trades: -1, source: 'ibkr-realtime' }));
    const got = s.bars.get('QQQ', '1Min', T0)!;
    assert.ok(Number.isNaN(got.vwap));
    assert.equal(got.trades, -1);
    assert.equal(got.source, 'ibkr-realtime');
  });

  test('bars written out of order read back in time order, and symbols that prefix each other do not mix', async () => {
    const s = tempStorage();
    const starts = [7, 2, 9, 0, 5];
    await s.bars.putMany(starts.map((m) => bar({ start: T0 + m * MIN })));
    await s.bars.putMany([bar({ symbol: 'QQ', start: T0 + 3 * MIN }), bar({ symbol: 'QQQA', start: T0 + 4 * MIN }), bar({ symbol: 'QQQ', barSize: '5Min', start: T0 + 10 * MIN })]);
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER).map((b) => (b.start - T0) / MIN),
      [0, 2, 5, 7, 9],
    );
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 10).map((b) => (b.start - T0) / MIN),
      [0, 2, 5, 7, 9],
    );
    assert.equal(s.bars.latest('QQQ', '1Min')!.start, T0 + 9 * MIN);
    assert.deepEqual(
      s.bars.range('QQ', '1Min', 0, Number.MAX_SAFE_INTEGER).map((b) => b.symbol),
      ['QQ'],
    );
    assert.deepEqual(s.bars.symbols(), ['QQ', 'QQQ', 'QQQA']);
    assert.deepEqual(s.bars.symbols('5Min'), ['QQQ']);
    assert.deepEqual(s.bars.symbols('1Hour'), []);
  });

  test('the newest bar stays the newest when an older bar arrives later', async () => {
    const s = tempStorage();
    await s.bars.put(bar({ start: T0 + 10 * MIN }));
    await s.bars.put(bar({ start: T0 + 3 * MIN }));
    const view = createBarView();
    assert.equal(s.bars.latestInto('QQQ', '1Min', view), true);
    assert.equal(view.start, T0 + 10 * MIN);
  });
});

describe('corrections and the cross-source rule', () => {
  test('a bar from the same source replaces the old one, counted as a correction', async () => {
    const s = tempStorage();
    await s.bars.put(bar({ close: 430.5 }));
    const result = await s.bars.put(bar({ close: 430.6, volume: 16_000 }));
    assert.deepEqual(result, { written: 1, shadowed: 0, divergent: 0 });
    const got = s.bars.get('QQQ', '1Min', T0)!;
    assert.equal(got.close, 430.6);
    assert.equal(got.volume, 16_000);
    assert.equal(s.bars.stats().corrections, 1);
    assert.equal(s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER).length, 1);
  });

  test('a lower-precedence source is kept out and a higher one replaces, whatever the order', async () => {
    const s = tempStorage();
    await s.bars.put(bar({ source: 'alpaca', close: 430.4 }));
    const up = await s.bars.put(bar({ source: 'massive', close: 430.5 }));
    assert.deepEqual(up, { written: 1, shadowed: 0, divergent: 0 });
    const down = await s.bars.put(bar({ source: 'sim', close: 430.45 }));
    assert.deepEqual(down, { written: 0, shadowed: 1, divergent: 0 });
    const got = s.bars.get('QQQ', '1Min', T0)!;
    assert.equal(got.source, 'massive');
    assert.equal(got.close, 430.5);
    assert.equal(s.bars.stats().shadowed, 1);
  });

  test('a batch reports, per bar, the source the cache holds for its key after the write', async () => {
    const s = tempStorage();
    await s.bars.put(bar({ source: 'massive', start: T0 + MIN }));
    const held = new Uint8Array(3);
    const r = await s.bars.putMany([bar({ source: 'alpaca', start: T0 }), bar({ source: 'alpaca', start: T0 + MIN }), bar({ source: 'alpaca', symbol: 'SPY', start: T0 })], held);
    assert.deepEqual(r, { written: 2, shadowed: 1, divergent: 0 });
    assert.deepEqual(
      [...held].map((code) => sourceOfCode(code)),
      ['alpaca', 'massive', 'alpaca'],
    );
    await assert.rejects(s.bars.putMany([bar(), bar({ start: T0 + 2 * MIN })], new Uint8Array(1)), RangeError);
  });

  test('prices more than 0.05% apart between sources count as divergent, volume differences do not', async () => {
    const s = tempStorage();
    const events: DivergenceEvent[] = [];
    const onEvent = (m: unknown) => events.push(m as DivergenceEvent);
    subscribe('barkeep:storage:divergence', onEvent);
    try {
      await s.bars.put(bar({ start: T0, close: 430.5, volume: 1000 }));
      await s.bars.put(bar({ start: T0 + MIN, close: 430.5 }));
      // 0.02% off and a very different volume: not divergent
      const near = await s.bars.put(bar({ start: T0, source: 'alpaca', close: 430.5 * 1.0002, volume: 90 }));
      assert.deepEqual(near, { written: 0, shadowed: 1, divergent: 0 });
      // 0.1% off on the close: divergent (and still shadowed)
      const far = await s.bars.put(bar({ start: T0 + MIN, source: 'alpaca', close: 430.5 * 0.999, low: 429 }));
      assert.deepEqual(far, { written: 0, shadowed: 1, divergent: 1 });
    } finally {
      unsubscribe('barkeep:storage:divergence', onEvent);
    }
    assert.equal(s.bars.stats().divergent, 1);
    assert.equal(events.length, 1);
    assert.equal(events[0].stored, 'massive');
    assert.equal(events[0].incoming, 'alpaca');
    assert.equal(events[0].start, T0 + MIN);
    assert.ok(events[0].gap > 0.0005);
  });

  test('a configured precedence decides instead of the default', async () => {
    const s = tempStorage({ sourcePrecedence: ['alpaca', 'massive'] });
    await s.bars.put(bar({ source: 'alpaca', close: 430.4 }));
    await s.bars.put(bar({ source: 'massive', close: 430.5 }));
    await s.bars.put(bar({ source: 'sim', close: 430.45 }));
    assert.equal(s.bars.get('QQQ', '1Min', T0)!.source, 'alpaca');
    assert.equal(s.bars.stats().shadowed, 2);
  });

  test('a precedence naming an unknown source is refused at open', () => {
    assert.throws(() => tempStorage({ sourcePrecedence: ['massive', 'polygon' as BarSource] }), /polygon.*not a bar source/);
  });

  test('within one batch, a later bar for the same key meets the earlier one', async () => {
    const s = tempStorage();
    const result = await s.bars.putMany([bar({ source: 'sim' }), bar({ source: 'massive' }), bar({ source: 'alpaca' })]);
    assert.deepEqual(result, { written: 2, shadowed: 1, divergent: 0 });
    assert.equal(s.bars.get('QQQ', '1Min', T0)!.source, 'massive');
  });
});

describe('ranges and latest-N at the edges', () => {
  test('an empty series gives nothing and fills nothing', () => {
    const s = tempStorage();
    const view = createBarView();
    const cols = createBarColumns(4);
    assert.equal(s.bars.latest('QQQ', '1Min'), undefined);
    assert.equal(s.bars.latestInto('QQQ', '1Min', view), false);
    assert.equal(s.bars.readInto('QQQ', '1Min', T0, view), false);
    assert.deepEqual(s.bars.latestN('QQQ', '1Min', 5), []);
    assert.deepEqual(s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER), []);
    assert.equal(s.bars.latestNInto('QQQ', '1Min', 4, cols), 0);
    assert.equal(s.bars.rangeInto('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER, cols), 0);
    assert.deepEqual(s.bars.symbols(), []);
  });

  test('one bar is the latest, the only one of latest-N, and in a range that includes its start', async () => {
    const s = tempStorage();
    await s.bars.put(bar());
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 3).map((b) => b.start),
      [T0],
    );
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', T0, T0).map((b) => b.start),
      [T0],
    );
    assert.deepEqual(s.bars.range('QQQ', '1Min', T0 + 1, T0 + MIN), []);
    assert.deepEqual(s.bars.range('QQQ', '1Min', T0 - MIN, T0 - 1), []);
    const cols = createBarColumns(3);
    assert.equal(s.bars.latestNInto('QQQ', '1Min', 3, cols), 1);
    assert.equal(cols.start[0], T0);
    assert.equal(cols.close[0], 430.5);
  });

  test('latest-N with exactly N bars returns all of them, and N-1 drops the oldest', async () => {
    const s = tempStorage();
    await s.bars.putMany(minutes(5));
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 5).map((b) => (b.start - T0) / MIN),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 4).map((b) => (b.start - T0) / MIN),
      [1, 2, 3, 4],
    );
    assert.deepEqual(s.bars.latestN('QQQ', '1Min', 0), []);
    const cols = createBarColumns(5);
    assert.equal(s.bars.latestNInto('QQQ', '1Min', 5, cols), 5);
    assert.deepEqual(
      [...cols.start].map((t) => (t - T0) / MIN),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      [...cols.close],
      [0, 1, 2, 3, 4].map((i) => 430 + i / 100),
    );
  });

  test('latest-N into columns smaller than N fills the newest rows the columns can hold', async () => {
    const s = tempStorage();
    await s.bars.putMany(minutes(6));
    const cols = createBarColumns(4);
    assert.equal(s.bars.latestNInto('QQQ', '1Min', 10, cols), 4);
    assert.deepEqual(
      [...cols.start].map((t) => (t - T0) / MIN),
      [2, 3, 4, 5],
    );
    assert.equal(s.bars.rangeInto('QQQ', '1Min', T0 + MIN, T0 + 10 * MIN, cols), 4);
    assert.deepEqual(
      [...cols.start].map((t) => (t - T0) / MIN),
      [1, 2, 3, 4],
    );
  });

  test('latest-N up to a time, and ranges with both ends inclusive and a limit', async () => {
    const s = tempStorage();
    await s.bars.putMany(minutes(10));
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 3, T0 + 5 * MIN).map((b) => (b.start - T0) / MIN),
      [3, 4, 5],
    );
    assert.deepEqual(
      s.bars.latestN('QQQ', '1Min', 3, T0 + 5 * MIN - 1).map((b) => (b.start - T0) / MIN),
      [2, 3, 4],
    );
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', T0 + 2 * MIN, T0 + 4 * MIN).map((b) => (b.start - T0) / MIN),
      [2, 3, 4],
    );
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', T0 + 2 * MIN, T0 + 8 * MIN, 2).map((b) => (b.start - T0) / MIN),
      [2, 3],
    );
    assert.deepEqual(s.bars.range('QQQ', '1Min', T0 + 4 * MIN, T0 + 2 * MIN), []);
  });
});

describe('bad input', () => {
  const cases: [string, Partial<Bar>, string, string][] = [
    ['a lower-case symbol', { symbol: 'qqq' }, 'BAD_SYMBOL', 'symbol'],
    ['an empty symbol', { symbol: '' }, 'BAD_SYMBOL', 'symbol'],
    ['an unknown bar size', { barSize: '2Min' as BarSize }, 'BAD_BAR_SIZE', 'barSize'],
    ['an unknown source', { source: 'polygon' as BarSource }, 'BAD_SOURCE', 'source'],
    ['a NaN price', { close: NaN }, 'BAD_PRICE', 'close'],
    ['an infinite price', { high: Infinity }, 'BAD_PRICE', 'high'],
    ['a negative price', { low: -1 }, 'BAD_PRICE', 'low'],
    ['a negative volume', { volume: -5 }, 'BAD_VOLUME', 'volume'],
    ['a non-finite volume', { volume: Infinity }, 'BAD_VOLUME', 'volume'],
    ['a fractional trade count', { trades: 2.5 }, 'BAD_VOLUME', 'trades'],
    ['high below low', { high: 429, low: 430, open: 429.5, close: 429.5 }, 'BAD_RANGE', 'high'],
    ['open above high', { open: 431 }, 'BAD_RANGE', 'open'],
    ['close below low', { close: 429 }, 'BAD_RANGE', 'close'],
    ['a start off the minute', { start: T0 + 30_000 }, 'BAD_TIME', 'start'],
    ['a negative start', { start: -MIN }, 'BAD_TIME', 'start'],
    ['a non-finite receive time', { receivedAt: NaN }, 'BAD_TIME', 'receivedAt'],
  ];
  for (const [what, over, code, field] of cases) {
    test(`${what} is refused with ${code} naming ${field}, counted, and nothing is written`, async () => {
      const s = tempStorage();
      await assert.rejects(s.bars.put(bar(over)), (err: unknown) => {
        assert.ok(err instanceof BarValidationError);
        assert.equal(err.code, code);
        assert.equal(err.field, field);
        assert.match(err.message, new RegExp(field));
        return true;
      });
      assert.equal(s.bars.stats().rejected, 1);
      assert.equal(s.bars.stats().writes, 0);
      assert.deepEqual(s.bars.symbols(), []);
    });
  }

  test('one bad bar in a batch refuses the whole batch, naming its index', async () => {
    const s = tempStorage();
    const batch = minutes(5);
    batch[3] = bar({ start: T0 + 3 * MIN, high: 1, low: 2 });
    await assert.rejects(s.bars.putMany(batch), (err: unknown) => {
      assert.ok(err instanceof BarValidationError);
      assert.equal(err.index, 3);
      assert.equal(err.field, 'high');
      assert.match(err.message, /bar #3/);
      return true;
    });
    assert.deepEqual(s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER), []);
    assert.equal(s.bars.stats().rejected, 5);
  });

  test('reads with a bad symbol find nothing instead of throwing', () => {
    const s = tempStorage();
    assert.equal(s.bars.get('not a symbol', '1Min', T0), undefined);
    assert.equal(s.bars.readInto('', '1Min', T0, createBarView()), false);
    assert.deepEqual(s.bars.latestN('qqq', '1Min', 5), []);
  });
});

describe('retention', () => {
  test('pruning removes only bars older than their size retention', async () => {
    const s = tempStorage({ retentionDays: { '1Min': 2, '1Day': Infinity } });
    await s.bars.putMany([
      bar({ start: T0 }),
      bar({ start: T0 + MIN }),
      bar({ start: T0 + 2 * DAY }),
      bar({ symbol: 'SPY', start: T0 }),
      bar({ barSize: '5Min', start: T0 }),
      bar({ barSize: '1Day', start: T0 - 10 * 365 * DAY }),
    ]);
    const now = T0 + 2 * DAY + 30_000; // cutoff T0 + 30 s: removes the T0 bars of 1Min only
    assert.equal(await s.bars.prune(now), 2);
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER).map((b) => b.start),
      [T0 + MIN, T0 + 2 * DAY],
    );
    assert.equal(s.bars.latest('SPY', '1Min'), undefined);
    assert.deepEqual(s.bars.symbols('1Min'), ['QQQ']);
    assert.ok(s.bars.get('QQQ', '5Min', T0));
    assert.equal(s.bars.range('QQQ', '1Day', 0, Number.MAX_SAFE_INTEGER).length, 1);
    assert.equal(s.bars.stats().pruned, 2);
    assert.equal(await s.bars.prune(now), 0);
  });

  test('pruning runs in the background on the injected clock until cancelled', async () => {
    const s = tempStorage({ retentionDays: { '1Min': 1 } });
    await s.bars.putMany(minutes(3));
    const clock = new ManualClock(T0 + DAY + 1);
    const handle = s.bars.startPruning(clock, 60_000);
    clock.advance(60_000);
    await waitFor(() => s.bars.stats().pruned >= 2, 'the first round pruned two bars');
    assert.deepEqual(
      s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER).map((b) => (b.start - T0) / MIN),
      [2],
    );
    assert.equal(clock.pending(), 1, 'the next round is scheduled');
    handle.cancel();
    assert.equal(clock.pending(), 0);
  });

  test('more bars than one prune transaction holds are all pruned', async () => {
    const s = tempStorage({ retentionDays: { '1Min': 1 } });
    for (let i = 0; i < 12; i++) await s.bars.putMany(minutes(1000, {}, i * 1000));
    assert.equal(await s.bars.prune(T0 + DAY + 11_000 * MIN), 11_000);
    assert.equal(s.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER).length, 1000);
  });
});

describe('checkpoints and the order journal', () => {
  test('a checkpoint keeps structured values and can be deleted', async () => {
    const s = tempStorage();
    const value = { last: new Map([['QQQ', T0]]), since: new Date(T0), seen: new Set(['a']), n: 3 };
    await s.checkpoints.put('collector', value);
    assert.deepEqual(s.checkpoints.get('collector'), value);
    await s.checkpoints.delete('collector');
    assert.equal(s.checkpoints.get('collector'), undefined);
    await assert.rejects(s.checkpoints.put('', 1), /non-empty string/);
  });

  test('orders are replaced by id, listed oldest first, and open ones are those not final', async () => {
    const s = tempStorage();
    const order = (id: string, createdAt: number, state: 'pending' | 'filled' | 'submitted') => ({
      clientOrderId: id,
      strategy: 'sma',
      symbol: 'QQQ',
      side: 'buy' as const,
      qty: 10,
      type: 'market' as const,
      broker: 'paper' as const,
      state,
      filledQty: 0,
      avgFillPrice: 0,
      commission: 0,
      fills: [],
      barStart: T0,
      reason: 'cross',
      createdAt,
      updatedAt: createdAt,
    });
    await s.orders.put(order('b', 2, 'pending'));
    await s.orders.put(order('a', 2, 'submitted'));
    await s.orders.put(order('c', 1, 'pending'));
    await s.orders.put({ ...order('c', 1, 'filled'), filledQty: 10, fills: [{ execId: 'e1', qty: 10, price: 430, time: 5, commission: 1 }] });
    assert.deepEqual(
      s.orders.all().map((o) => o.clientOrderId),
      ['c', 'a', 'b'],
    );
    assert.deepEqual(
      s.orders.open().map((o) => o.clientOrderId),
      ['a', 'b'],
    );
    assert.equal(s.orders.get('c')!.fills[0].execId, 'e1');
    assert.equal(s.orders.get('zzz'), undefined);
  });
});

test('data written before close is there after reopening the same path', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-store-'));
  dirs.push(dir);
  const first = openStorage({ path: dir });
  await first.bars.putMany(minutes(3));
  await first.checkpoints.put('k', { v: 1 });
  await first.close();
  const second = openStorage({ path: dir });
  opened.push(second);
  assert.equal(second.bars.latestN('QQQ', '1Min', 10).length, 3);
  assert.deepEqual(second.checkpoints.get('k'), { v: 1 });
});
