/**
 * The collector's dashboard `written` events: a minute's close for thousands of symbols is one
 * event per symbol, emitted a chunk per turn of the event loop, in order, so the stream's next
 * frames and the next batch's commit are not kept waiting behind thousands of postMessages.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writtenEvent } from '../../src/actors/collector/collector-events.ts';
import { DeferredEvents, EVENTS_PER_TURN } from '../../src/actors/collector/written-batch.ts';

const turn = () => new Promise<void>((r) => setImmediate(r));
const T = Date.parse('2026-03-11T15:00:00Z');

test("a burst's written events go out a chunk per turn, every one, in order, and none before the next turn", async () => {
  const got: string[] = [];
  const events = new DeferredEvents((_size, symbol) => got.push(symbol));
  const n = EVENTS_PER_TURN * 2 + 88;
  for (let i = 0; i < n; i++) events.push('1Min', `S${i}`, [T]);
  assert.equal(got.length, 0, 'nothing in the turn that wrote');
  await turn();
  assert.equal(got.length, EVENTS_PER_TURN, 'one chunk in the next turn');
  // A write in the middle of the burst: its events queue behind the ones waiting.
  events.push('1Min', 'LATE', [T + 60_000]);
  await turn();
  assert.equal(got.length, EVENTS_PER_TURN * 2);
  await turn();
  assert.deepEqual(got, [...Array.from({ length: n }, (_, i) => `S${i}`), 'LATE']);
  // Drained: a later write is emitted in the turn after it.
  events.push('1Min', 'NEXT', [T]);
  await turn();
  assert.equal(got.at(-1), 'NEXT');
});

test('a written event names the first and last start written, a lone bar both the same', () => {
  assert.deepEqual(writtenEvent('1Min', 'QQQ', [T]), { kind: 'written', symbol: 'QQQ', bar_size: '1Min', count: 1, first: '2026-03-11T15:00:00.000Z', last: '2026-03-11T15:00:00.000Z' });
  assert.deepEqual(writtenEvent('5Min', 'SPY', [T + 300_000, T]), { kind: 'written', symbol: 'SPY', bar_size: '5Min', count: 2, first: '2026-03-11T15:00:00.000Z', last: '2026-03-11T15:05:00.000Z' });
  assert.equal(writtenEvent('1Min', 'QQQ', []).first, null);
});
