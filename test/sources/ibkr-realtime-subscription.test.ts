/** The real-time subscription's policy (realtime-subscription.ts) without a socket: refusals, stalls, recovery. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyIbError } from '../../src/sources/ibkr/error-codes.ts';
import { barArrived, newSubscription, requestRefused, stallCheck } from '../../src/sources/ibkr/realtime-subscription.ts';

const T0 = Date.UTC(2026, 0, 5, 15);
const UNAVAILABLE = { initialMs: 10_000, maxMs: 240_000 };
const STALL = { initialMs: 30_000, maxMs: 120_000 };
const refusal = (code: number) => ({ reqId: 1, code, message: `code ${code}`, policy: classifyIbError(code, `code ${code}`) });

test('a refusal is retried no sooner than IB asks, then at doubling waits up to the cap, and reported once', () => {
  const sub = newSubscription('QQQ', '1Min', 2_000, T0, UNAVAILABLE, STALL);
  const waits = [];
  for (let i = 0; i < 5; i++) {
    const next = requestRefused(sub, refusal(420), T0, UNAVAILABLE);
    assert.equal(next.kind, 'retry');
    if (next.kind === 'retry') {
      assert.equal(next.first, i === 0, 'only the first refusal begins the unavailable spell');
      waits.push(next.retryMs);
    }
  }
  // 420 asks for a minute, over the 10 s configured; the cap is 240 s.
  assert.deepEqual(waits, [60_000, 120_000, 240_000, 240_000, 240_000]);
  assert.equal(sub.state, 'unavailable');
  assert.equal(barArrived(sub, T0 + 1, UNAVAILABLE, STALL), true, 'the first bar after it is a recovery');
  assert.equal(sub.unavailableDelay, UNAVAILABLE.initialMs, 'and the next spell starts from the beginning');
});

test('200 makes the subscription a bad contract for good', () => {
  const sub = newSubscription('ZZZZ', '1Min', 2_000, T0, UNAVAILABLE, STALL);
  assert.deepEqual(requestRefused(sub, refusal(200), T0, UNAVAILABLE), { kind: 'bad-contract' });
  assert.equal(sub.state, 'bad-contract');
  sub.reqId = 7;
  assert.equal(stallCheck(sub, T0 + 3_600_000, 15_000, STALL), 'none', 'never checked for stalls again');
});

test('silence over the stall time is a stall, then a request again at doubling intervals, until a bar comes', () => {
  const sub = newSubscription('MSFT', '1Min', 2_000, T0, UNAVAILABLE, STALL);
  sub.reqId = 1;
  assert.equal(stallCheck(sub, T0 + 14_999, 15_000, STALL), 'none');
  assert.equal(stallCheck(sub, T0 + 15_000, 15_000, STALL), 'stall');
  sub.watchFrom = T0 + 15_000; // the feed requests again at once
  const requests: number[] = [];
  for (let t = T0 + 15_000; t <= T0 + 15_000 + 400_000; t += 1_000) if (stallCheck(sub, t, 15_000, STALL) === 'request') requests.push(t - (T0 + 15_000));
  assert.deepEqual(requests, [30_000, 90_000, 210_000, 330_000]);
  assert.equal(barArrived(sub, T0 + 500_000, UNAVAILABLE, STALL), true);
  assert.equal(sub.state, 'streaming');
  assert.equal(stallCheck(sub, T0 + 500_000 + 14_999, 15_000, STALL), 'none');
});
