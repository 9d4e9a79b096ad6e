/**
 * Actor events (src/runtime/events.ts) over a real MessageChannel: the events of one turn go out
 * as one message, in order, and the receiving side hands them on one by one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { type ActorEvent, eventEmitter, unpackEvents } from '../../src/runtime/events.ts';

function channel() {
  const ch = new MessageChannel();
  const messages: Array<ActorEvent | ActorEvent[]> = [];
  const received: ActorEvent[] = [];
  const waiters: Array<() => void> = [];
  ch.port1.on('message', (m: ActorEvent | ActorEvent[]) => {
    messages.push(m);
    unpackEvents(m, (ev) => received.push(ev));
    for (const w of waiters.splice(0)) w();
  });
  const until = async (n: number) => {
    while (received.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { ch, messages, received, until, close: () => ch.port1.close() };
}

test("one turn's events cross the thread as one message, in the order they were emitted", async () => {
  const c = channel();
  try {
    let t = 1000;
    const emit = eventEmitter(
      c.ch.port2,
      () => t++,
      () => assert.fail('nothing is dropped'),
    );
    for (let n = 0; n < 5000; n++) emit('bar', { n });
    emit('order', { n: 5000 });
    await c.until(5001);
    assert.equal(c.messages.length, 1, 'one postMessage for the turn');
    assert.deepEqual(
      c.received.map((e) => e.data.n),
      Array.from({ length: 5001 }, (_, i) => i),
    );
    assert.deepEqual(c.received.at(-1), { type: 'order', at: 6000, data: { n: 5000 } });
    // The next turn's events are the next message.
    await new Promise((r) => setImmediate(r));
    emit('fill', { n: 5001 });
    await c.until(5002);
    assert.equal(c.messages.length, 2);
    assert.equal(c.received.at(-1)!.type, 'fill');
  } finally {
    c.close();
  }
});

test('an event that cannot cross the thread is dropped and counted alone; the rest of its turn arrives', async () => {
  const c = channel();
  try {
    let dropped = 0;
    const emit = eventEmitter(
      c.ch.port2,
      () => 0,
      () => dropped++,
    );
    emit('bar', { n: 1 });
    emit('bar', { n: 2, bad: () => 0 });
    emit('bar', { n: 3 });
    await c.until(2);
    assert.equal(dropped, 1);
    assert.deepEqual(
      c.received.map((e) => e.data.n),
      [1, 3],
    );
  } finally {
    c.close();
  }
});

test('a lone event (not in an array) is still handed on', () => {
  const got: ActorEvent[] = [];
  unpackEvents({ type: 'actor', at: 1, data: {} }, (ev) => got.push(ev));
  assert.deepEqual(got, [{ type: 'actor', at: 1, data: {} }]);
});
