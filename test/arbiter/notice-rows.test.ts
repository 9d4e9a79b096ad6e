/**
 * A collector notice's symbols resolved to the arbiter's rows by the ids the collector's
 * WrittenBatch gives them (symbol-rows.ts), and the trader batch that reuses its message: the
 * arbiter's per-bar path at a minute's close, with the real cache and the real WrittenBatch.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Arbiter } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import { TraderBatch, forEachBar } from '../../src/actors/arbiter/trader-batch.ts';
import type { CollectorToArbiter } from '../../src/actors/collector/protocol.ts';
import { WrittenBatch } from '../../src/actors/collector/written-batch.ts';
import { BAR_SOURCE_CODE, type Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { recordingArbiter } from '../helpers/arbiter-rig.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const S = (m: number) => T0 + m * MIN;
const SIM = BAR_SOURCE_CODE.sim;

function mkBar(symbol: string, start: number): Bar {
  return { symbol, barSize: '1Min', start, open: 100, high: 101, low: 99, close: 100.5, volume: 1_000, vwap: 100, trades: 12, source: 'sim', receivedAt: start + MIN };
}

async function rig(symbols: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-notice-rows-'));
  const storage = openStorage({ path: dir });
  const clock = new ManualClock(T0);
  const prefill: Bar[] = [];
  for (const s of ['AAA', 'BBB', 'CCC', 'DDD']) for (let m = -5; m < 0; m++) prefill.push(mkBar(s, S(m)));
  await storage.bars.putMany(prefill);
  const got: ArbiterToTrader[] = [];
  const arbiter = recordingArbiter(storage, clock, 5, (m) => got.push(m));
  arbiter.subscribe(symbols, '1Min', {}, true);
  return {
    dir,
    arbiter,
    clock,
    /** What the collector does at a minute's close: writes the bars, then its batch sends the notice (a copy, as postMessage makes). */
    async write(minute: number, written: string[]): Promise<void> {
      clock.set(S(minute + 1) + 3_000);
      await storage.bars.putMany(written.map((s) => mkBar(s, S(minute))));
    },
    async close(batch: WrittenBatch, minute: number, written: string[]): Promise<void> {
      await this.write(minute, written);
      for (const s of written) batch.add('1Min', s, [S(minute)], [SIM]);
      batch.flush();
    },
    /** Live bars handed on: [symbol, start minute]. */
    storage,
    handed: () => got.flatMap((m) => (m.type === 'bar' ? [[m.symbol, (m.start - T0) / MIN] as [string, number]] : [])),
    async [Symbol.asyncDispose]() {
      await arbiter.shutdown();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A collector's WrittenBatch whose notices reach `arbiter` as copies. */
function collector(arbiter: Arbiter): WrittenBatch {
  return new WrittenBatch((m) => arbiter.onWritten(structuredClone(m)));
}

test("each symbol's bars go to that symbol when a restarted collector numbers its symbols differently", async () => {
  await using r = await rig(['AAA', 'BBB', 'CCC']);
  const first = collector(r.arbiter);
  await r.close(first, 0, ['AAA', 'BBB']); // AAA is id 0, BBB id 1 for this collector
  // The collector restarts: its new batch gives id 0 to CCC and id 1 to AAA.
  const second = collector(r.arbiter);
  await r.close(second, 1, ['CCC', 'AAA', 'BBB']);
  await r.close(second, 2, ['BBB', 'AAA', 'CCC']);
  // Each in its notice's order; CCC's minute 0 was never written, so its first live bar is minute 1.
  assert.deepEqual(r.handed(), [
    ['AAA', 0],
    ['BBB', 0],
    ['CCC', 1],
    ['AAA', 1],
    ['BBB', 1],
    ['BBB', 2],
    ['AAA', 2],
    ['CCC', 2],
  ]);
});

test("a new subscription's rows are used for a collector's known ids, and a symbol no longer subscribed is dropped", async () => {
  await using r = await rig(['AAA', 'BBB']);
  const batch = collector(r.arbiter);
  await r.close(batch, 0, ['AAA', 'BBB', 'DDD']);
  assert.deepEqual(r.handed(), [
    ['AAA', 0],
    ['BBB', 0],
  ]);
  // The trader subscribes anew, in another order and without AAA: BBB and DDD get other rows.
  r.arbiter.subscribe(['DDD', 'BBB'], '1Min', {}, true);
  const before = r.handed().length;
  await r.close(batch, 1, ['AAA', 'BBB', 'DDD']);
  assert.deepEqual(r.handed().slice(before), [
    ['BBB', 1],
    ['DDD', 1],
  ]);
  assert.equal(r.arbiter.status().feed.BBB.last_bar_time, new Date(S(1)).toISOString());
  assert.equal(r.arbiter.status().feed.DDD.last_bar_time, new Date(S(1)).toISOString());
});

test('a bar after a minute without one is handed on at its notice when another thread wrote it after this turn began reading', async () => {
  await using r = await rig(['AAA']);
  const batch = collector(r.arbiter);
  await r.close(batch, 0, ['AAA']);
  // Minute 1 has no bar (no trade); minute 2's bar is written by the collector's thread.
  const done = new SharedArrayBuffer(4);
  const writer = new Worker(new URL('../fixtures/arbiter-notice-writer.mjs', import.meta.url), { workerData: { path: r.dir, done } });
  await new Promise((res, rej) => {
    writer.once('message', res);
    writer.once('error', rej);
  });
  try {
    r.clock.set(S(3) + 3_000);
    // This turn reads the cache first (its snapshot is taken now), then the other thread commits
    // while this one waits, then the notice arrives in the same turn.
    assert.equal(r.storage.bars.range('AAA', '1Min', S(2), S(2)).length, 0);
    writer.postMessage({ bars: [mkBar('AAA', S(2))] });
    assert.equal(Atomics.wait(new Int32Array(done), 0, 0, 10_000), 'ok');
    batch.add('1Min', 'AAA', [S(2)], [SIM]);
    batch.flush();
    assert.deepEqual(r.handed(), [
      ['AAA', 0],
      ['AAA', 2],
    ]);
  } finally {
    const closed = new Promise((res) => writer.once('message', res));
    writer.postMessage({ op: 'close' });
    await closed;
    await writer.terminate();
  }
});

test('a notice without symbol ids (an older collector) is resolved by symbol', async () => {
  await using r = await rig(['AAA', 'BBB']);
  await r.write(0, ['AAA', 'BBB']);
  // No ids, and no source said: each bar is read back from the cache.
  r.arbiter.onWritten({ type: 'bars-written', barSize: '1Min', symbols: ['BBB', 'CCC', 'AAA'], counts: [1, 1, 1], starts: [S(0), S(0), S(0)], sources: [-1, -1, -1] });
  assert.deepEqual(r.handed(), [
    ['BBB', 0],
    ['AAA', 0],
  ]);
});

test("a reused trader batch posts each turn's bars only, a smaller turn after a bigger one included", async () => {
  const posted: ArbiterToTrader[] = [];
  const objects = new Set<ArbiterToTrader>();
  // As postMessage: the message is copied before post returns.
  const batch = new TraderBatch(
    (m) => {
      objects.add(m);
      posted.push(structuredClone(m));
    },
    { reuse: true },
  );
  const msg: ArbiterToTrader = { type: 'bar', symbol: '', barSize: '1Min', start: 0, source: 'sim' };
  const turn = async (symbols: string[], minute: number) => {
    for (const s of symbols) {
      Object.assign(msg, { symbol: s, start: S(minute) });
      batch.send(msg);
    }
    await new Promise<void>((res) => setImmediate(res));
  };
  await turn(['AAA', 'BBB', 'CCC'], 0);
  await turn(['DDD'], 1);
  await turn(['EEE', 'FFF'], 2);
  const turns = posted.map((m) => {
    const bars: Array<[string, number]> = [];
    if (m.type === 'bars') forEachBar(m, (b) => bars.push([b.symbol, (b.start - T0) / MIN]));
    return bars;
  });
  assert.deepEqual(turns, [
    [
      ['AAA', 0],
      ['BBB', 0],
      ['CCC', 0],
    ],
    [['DDD', 1]],
    [
      ['EEE', 2],
      ['FFF', 2],
    ],
  ]);
  assert.equal(objects.size, 1, 'one message object for every turn');
});

test('a WrittenBatch gives a symbol the same id in every notice, and its epoch names the batch', async () => {
  const sent: CollectorToArbiter[] = [];
  const batch = new WrittenBatch((m) => sent.push(m));
  batch.add('1Min', 'AAA', [S(0)]);
  batch.add('1Min', 'BBB', [S(0)]);
  batch.flush();
  batch.add('1Min', 'CCC', [S(1)]);
  batch.add('1Min', 'AAA', [S(1)]);
  batch.flush();
  assert.deepEqual(
    sent.map((m) => m.ids),
    [
      [0, 1],
      [2, 0],
    ],
  );
  assert.equal(sent[0].epoch, sent[1].epoch);
  assert.notEqual(new WrittenBatch(() => {}).epoch, batch.epoch);
});
