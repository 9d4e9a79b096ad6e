import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/market/clock.ts';
import { RateLimiter } from '../../src/sources/rate-limiter.ts';

const flush = () => new Promise((resolve) => setImmediate(resolve));

/** Moves the clock 1 ms at a time, letting granted acquisitions record the time they started. */
async function tick(clock: ManualClock, ms: number): Promise<void> {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await flush();
  }
}

function maxInAnyWindow(times: number[], windowMs: number): number {
  let max = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    for (let j = i; j < times.length && times[j] < times[i] + windowMs; j++) n++;
    max = Math.max(max, n);
  }
  return max;
}

describe('RateLimiter', () => {
  test('lets `limit` requests start at once and the next one exactly when the oldest leaves the window', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 3, windowMs: 1000, clock });
    const started: number[] = [];
    for (let i = 0; i < 4; i++) void limiter.acquire().then(() => started.push(clock.now()));
    await flush();
    assert.deepEqual(started, [0, 0, 0]);
    assert.equal(limiter.remaining(), 0);
    await tick(clock, 999);
    assert.equal(started.length, 3);
    await tick(clock, 1);
    assert.deepEqual(started, [0, 0, 0, 1000]);
  });

  test('never lets more than `limit` start in any rolling window, whatever the arrival pattern', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 5, windowMs: 200, clock });
    const started: number[] = [];
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let ms = 0; ms < 1500; ms++) {
      const burst = rand() < 0.1 ? Math.floor(rand() * 6) : 0;
      for (let i = 0; i < burst; i++) void limiter.acquire().then(() => started.push(clock.now()));
      await flush();
      clock.advance(1);
      await flush();
    }
    await tick(clock, 3000);
    assert.ok(started.length > 20);
    assert.ok(maxInAnyWindow(started, 200) <= 5);
    assert.equal(maxInAnyWindow(started, 200), 5, 'the limit is used, not undershot');
  });

  test('serves waiters first in, first out', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 1, windowMs: 100, clock });
    const order: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) void limiter.acquire().then(() => order.push(name));
    await tick(clock, 350);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });

  test('holds every acquisition until a pause ends', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 10, windowMs: 1000, clock });
    limiter.pauseUntil(500);
    assert.equal(limiter.remaining(), 0);
    let at = -1;
    void limiter.acquire().then(() => (at = clock.now()));
    await tick(clock, 499);
    assert.equal(at, -1);
    await tick(clock, 1);
    assert.equal(at, 500);
    assert.equal(limiter.remaining(), 9);
  });

  test('an aborted waiter leaves the queue and the others still go', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 1, windowMs: 100, clock });
    await limiter.acquire();
    const ac = new AbortController();
    const aborted = limiter.acquire(ac.signal);
    let next = -1;
    void limiter.acquire().then(() => (next = clock.now()));
    ac.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
    await tick(clock, 100);
    assert.equal(next, 100);
  });

  test('a guard keeps each slot taken a little past its window', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: 1, windowMs: 100, guardMs: 20, clock });
    await limiter.acquire();
    let at = -1;
    void limiter.acquire().then(() => (at = clock.now()));
    await tick(clock, 119);
    assert.equal(at, -1);
    await tick(clock, 1);
    assert.equal(at, 120);
  });

  test('tells when the window frees: the oldest request plus the window', async () => {
    const clock = new ManualClock(1000);
    const limiter = new RateLimiter({ limit: 5, windowMs: 60_000, clock });
    await limiter.acquire();
    clock.advance(10_000);
    await limiter.acquire();
    assert.equal(limiter.windowFreesAt(), 61_000);
    assert.equal(limiter.remaining(), 3);
  });

  test('an infinite limit never waits and keeps no stamps', async () => {
    const clock = new ManualClock(0);
    const limiter = new RateLimiter({ limit: Infinity, windowMs: 60_000, clock });
    for (let i = 0; i < 10_000; i++) await limiter.acquire();
    assert.equal(limiter.remaining(), Infinity);
    assert.equal(clock.pending(), 0);
  });

  test('refuses a limit that is not positive', () => {
    assert.throws(() => new RateLimiter({ limit: 0, windowMs: 1000, clock: new ManualClock(0) }), /limit/);
  });
});
