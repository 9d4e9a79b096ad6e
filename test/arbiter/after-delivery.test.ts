import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AfterDelivery } from '../../src/actors/arbiter/after-delivery.ts';
import type { ArbiterToTrader, BarRef } from '../../src/actors/arbiter/protocol.ts';
import { ManualClock } from '../../src/market/clock.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0);
const turn = () => new Promise<void>((r) => setImmediate(r));

test('a burst of deliveries is reported and recorded in order, 256 jobs a turn, from a reused bar message', async () => {
  const clock = new ManualClock(T0);
  const seen: string[] = [];
  const after = new AfterDelivery(
    clock,
    (msg) => seen.push(msg.type === 'bar' ? `report ${msg.symbol}@${msg.start} ${msg.source}` : msg.type === 'feed' ? `report feed ${msg.symbol}` : `report ${msg.type}`),
    (bar, rung, at) => seen.push(`record ${bar.symbol}@${bar.start} ${rung} ${at - T0}`),
  );
  const msg: ArbiterToTrader & BarRef = { type: 'bar', symbol: '', barSize: '1Min', start: 0, source: 'sim' };
  const want: string[] = [];
  for (let i = 0; i < 300; i++) {
    // The arbiter reuses its message: the queue must copy what it needs.
    msg.symbol = `S${i}`;
    msg.start = T0 + i * 60_000;
    msg.source = i % 2 ? 'massive' : 'sim';
    clock.set(T0 + i);
    after.reported(msg);
    after.delivered(msg, 'cache');
    want.push(`report S${i}@${msg.start} ${msg.source}`, `record S${i}@${msg.start} cache ${i}`);
    if (i === 150) {
      after.reported({ type: 'feed', symbol: 'S150', rung: 'ibkr-realtime', reason: 'climbing back' });
      want.push('report feed S150');
    }
  }
  assert.equal(seen.length, 0, 'nothing runs in the turn that delivered');
  await turn();
  assert.equal(seen.length, 256, 'one chunk a turn');
  for (let i = 0; i < 5 && seen.length < want.length; i++) await turn();
  assert.deepEqual(seen, want);
  // Emptied, it starts again from the front and still keeps the order.
  after.reported({ type: 'feed', symbol: 'X', rung: 'cache', reason: 'r' });
  after.run();
  assert.equal(seen.at(-1), 'report feed X');
});
