/**
 * Streamed bars on their way to the collector's write (src/actors/collector/stream-batches.ts):
 * a burst that arrives over several turns of the event loop is one write; at most two writes are
 * under way at once; a bar identical to one being written is not written twice. Turns are real setImmediate turns; the write is a function that records what it
 * got and resolves when the test says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { GATHER_TURNS, MAX_IN_FLIGHT, StreamBatches } from '../../src/actors/collector/stream-batches.ts';
import type { Bar } from '../../src/market/bar.ts';

const T0 = Date.UTC(2026, 2, 11, 14, 0);
const turn = () => new Promise<void>((r) => setImmediate(r));
const bar = (i: number): Bar => ({ symbol: `S${i}`, barSize: '1Min', source: 'massive', start: T0, open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, vwap: 1, receivedAt: T0 }) as Bar;

function recorder() {
  const writes: string[][] = [];
  const done: Array<() => void> = [];
  const batches = new StreamBatches(
    (_source, bars) => {
      writes.push(bars.map((b) => b.symbol));
      return new Promise<void>((r) => done.push(r));
    },
    pino({ level: 'silent' }),
  );
  return { writes, done, batches };
}

test('a burst that arrives over several turns is written as one batch once a turn brings nothing; a second batch starts during that write, a third waits', async () => {
  const { writes, done, batches } = recorder();
  let i = 0;
  // Ten turns, each bringing a "socket read" of 50 bars.
  for (let t = 0; t < 10; t++) {
    for (let k = 0; k < 50; k++) batches.add('massive', bar(i++));
    await turn();
  }
  assert.equal(writes.length, 0, 'nothing written while bars keep coming');
  await turn();
  await turn();
  assert.equal(writes.length, 1);
  assert.equal(writes[0].length, 500);
  assert.deepEqual(writes[0].slice(0, 3), ['S0', 'S1', 'S2'], 'in arrival order');
  // More while the first write is under way: written at once, beside it (MAX_IN_FLIGHT).
  assert.equal(MAX_IN_FLIGHT, 2);
  for (let k = 0; k < 5; k++) batches.add('massive', bar(i++));
  for (let t = 0; t < 3; t++) await turn();
  assert.deepEqual(writes[1], ['S500', 'S501', 'S502', 'S503', 'S504']);
  // Both slots taken: the next ones wait for a write to finish.
  for (let k = 0; k < 3; k++) batches.add('massive', bar(i++));
  for (let t = 0; t < 5; t++) await turn();
  assert.equal(writes.length, 2, 'a third write waits while two are under way');
  done[0]();
  await turn();
  assert.deepEqual(writes[2], ['S505', 'S506', 'S507']);
  done[1]();
  done[2]();
  await batches.idle();
});

test('a bar identical to one still being written is skipped; a changed one is written after it', async () => {
  const { writes, done, batches } = recorder();
  batches.add('massive', bar(1));
  batches.add('massive', bar(2));
  await turn();
  await turn();
  assert.deepEqual(writes, [['S1', 'S2']]);
  // The vendor sends S1 again, identical, and S2 corrected, while the first write is under way.
  batches.add('massive', bar(1));
  batches.add('massive', { ...bar(2), close: 2, high: 2 });
  await turn();
  await turn();
  assert.deepEqual(writes[1], ['S2'], 'only the corrected bar');
  done[0]();
  done[1]();
  await batches.idle();
  // Once written, the same bar goes to the write again (the cache's own check skips it there).
  batches.add('massive', bar(1));
  await turn();
  await turn();
  assert.deepEqual(writes[2], ['S1']);
  done[2]();
  await batches.idle();
});

test('a lone bar is written after one quiet turn, and bars that never stop coming are still written every GATHER_TURNS turns', async () => {
  const { writes, done, batches } = recorder();
  batches.add('massive', bar(0));
  await turn();
  await turn();
  assert.deepEqual(writes, [['S0']]);
  done[0]();
  await batches.idle();
  // One bar every turn, for longer than the gathering may last.
  let i = 1;
  for (let t = 0; t < GATHER_TURNS + 5; t++) {
    batches.add('massive', bar(i++));
    await turn();
  }
  assert.equal(writes.length, 2, 'written before the arrivals stopped');
  assert.ok(writes[1].length <= GATHER_TURNS + 1 && writes[1].length >= GATHER_TURNS - 1, `${writes[1].length} bars in the batch`);
  done[1]();
  await turn();
  await turn();
  for (const d of done.slice(2)) d();
  await batches.idle();
  assert.equal(writes.flat().length, GATHER_TURNS + 6, 'every bar written once');
  assert.equal(new Set(writes.flat()).size, GATHER_TURNS + 6);
});
