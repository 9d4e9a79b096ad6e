/**
 * The notices between the threads, gathered per event-loop turn: the collector's `bars-written`
 * (many symbols in one message) and the arbiter's `bars` to the trader (in order with its other
 * messages).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ArbiterToTrader, BarRef } from '../../src/actors/arbiter/protocol.ts';
import { TraderBatch, forEachBar } from '../../src/actors/arbiter/trader-batch.ts';
import type { CollectorToArbiter } from '../../src/actors/collector/protocol.ts';
import { WrittenBatch, forEachWritten } from '../../src/actors/collector/written-batch.ts';

const turn = () => new Promise<void>((r) => setImmediate(r));

test('the keys written in one turn reach the arbiter as one message, each symbol with its own starts', async () => {
  const sent: CollectorToArbiter[] = [];
  const batch = new WrittenBatch((m) => sent.push(m));
  batch.add('1Min', 'AAA', [60_000]);
  batch.add('1Min', 'BBB', [60_000, 120_000]);
  batch.add('1Min', 'CCC', []);
  assert.equal(sent.length, 0, 'nothing is sent before the turn ends');
  await turn();
  assert.equal(sent.length, 1);
  const seen: Array<[string, number[]]> = [];
  forEachWritten(sent[0], (symbol, starts, from, to) => seen.push([symbol, starts.slice(from, to)]));
  assert.deepEqual(seen, [
    ['AAA', [60_000]],
    ['BBB', [60_000, 120_000]],
  ]);
  batch.add('1Min', 'AAA', [180_000]);
  await turn();
  assert.equal(sent.length, 2, 'a later turn sends its own message');
});

test('keys of another bar size in the same turn go in a message of their own', async () => {
  const sent: CollectorToArbiter[] = [];
  const batch = new WrittenBatch((m) => sent.push(m));
  batch.add('1Min', 'AAA', [60_000]);
  batch.add('5Min', 'AAA', [0]);
  await turn();
  assert.deepEqual(
    sent.map((m) => [m.barSize, m.symbols]),
    [
      ['1Min', ['AAA']],
      ['5Min', ['AAA']],
    ],
  );
});

test("the arbiter's bars of one turn reach the trader as one message, and a feed switch after them stays after them", async () => {
  const posted: ArbiterToTrader[] = [];
  const batch = new TraderBatch((m) => posted.push(m));
  // The arbiter reuses one bar message object: the batch must copy it.
  const msg: ArbiterToTrader = { type: 'bar', symbol: 'AAA', barSize: '1Min', start: 60_000, source: 'massive' };
  batch.send(msg);
  Object.assign(msg, { symbol: 'BBB', start: 120_000, source: 'alpaca' });
  batch.send(msg);
  batch.send({ type: 'feed', symbol: 'BBB', rung: 'cache', reason: 'fresh bars in the cache' });
  Object.assign(msg, { symbol: 'CCC', start: 180_000, source: 'sim' });
  batch.send(msg);
  await turn();
  assert.deepEqual(
    posted.map((m) => m.type),
    ['bars', 'feed', 'bars'],
  );
  const bars: BarRef[] = [];
  for (const m of posted) if (m.type === 'bars') forEachBar(m, (b) => bars.push({ ...b }));
  assert.deepEqual(bars, [
    { symbol: 'AAA', barSize: '1Min', start: 60_000, source: 'massive' },
    { symbol: 'BBB', barSize: '1Min', start: 120_000, source: 'alpaca' },
    { symbol: 'CCC', barSize: '1Min', start: 180_000, source: 'sim' },
  ]);
});
