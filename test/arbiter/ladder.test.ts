import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CACHE, countFreshIfServing, FeedTable, REALTIME } from '../../src/actors/arbiter/feed-table.ts';
import { FeedLadder, LADDER } from '../../src/actors/arbiter/ladder.ts';
import type { Rung } from '../../src/actors/arbiter/protocol.ts';

const ALL: Rung[] = ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'];
const T0 = Date.UTC(2026, 0, 5, 15, 0);

function ladder(enabled: Rung[] = ALL, climbBack = 3) {
  return new FeedLadder('QQQ', enabled, climbBack, T0);
}

test('the ladder lists the rungs best first, and hands down from the serving rung in that order', () => {
  assert.deepEqual(LADDER, ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical']);
  const l = ladder();
  // Every rung up, the best first: it serves, and each one going down hands over to the next below.
  for (const rung of ALL) l.markUp(rung, T0);
  assert.equal(l.serving, 'ibkr-realtime');
  const handedTo = ALL.map((rung, i) => l.markDown(rung, T0 + i + 1, 'gone')?.to);
  assert.deepEqual(handedTo, ['preload', 'cache', 'ibkr-historical', null]);
});

test('with nothing up no rung serves, and unavailable() explains every rung', () => {
  const l = ladder(['preload', 'cache']);
  assert.equal(l.serving, null);
  assert.deepEqual(l.unavailable(), {
    'ibkr-realtime': 'not configured',
    preload: 'no bars yet',
    cache: 'no bars yet',
    'ibkr-historical': 'not configured',
  });
});

test('the preload serves first and ends at the first live bar', () => {
  const l = ladder();
  const up = l.markUp('preload', T0, 'warm-up: 200 bars preloaded');
  assert.deepEqual(up, { from: null, to: 'preload', reason: 'warm-up: 200 bars preloaded', at: T0 });
  // A fresh cache below it does not displace the warm-up.
  assert.equal(l.markUp('cache', T0 + 1, 'fresh bars in the cache'), null);
  assert.equal(l.serving, 'preload');
  const sw = l.freshBar('cache', T0 + 60_000);
  assert.equal(sw?.from, 'preload');
  assert.equal(sw?.to, 'cache');
  assert.equal(l.serving, 'cache');
  assert.equal(l.since, T0 + 60_000);
  assert.equal(l.isUp('preload'), false, 'a buffer has no new bars to give');
  assert.match(l.unavailable().preload ?? '', /warm-up delivered/);
});

test('the preload takes over from a lower rung that came up before the warm-up ended', () => {
  const l = ladder();
  assert.equal(l.markUp('ibkr-historical', T0, 'IBKR connected')?.to, 'ibkr-historical');
  const sw = l.markUp('preload', T0 + 1, 'warm-up: 10 bars preloaded');
  assert.equal(sw?.to, 'preload');
  assert.equal(l.serving, 'preload');
});

test('the preload never displaces a live rung above it', () => {
  const l = ladder();
  l.freshBar('ibkr-realtime', T0);
  assert.equal(l.serving, 'ibkr-realtime');
  assert.equal(l.markUp('preload', T0 + 1), null);
  assert.equal(l.serving, 'ibkr-realtime');
});

test('the serving rung going down hands over at once to the next rung that is up', () => {
  const l = ladder();
  l.freshBar('ibkr-realtime', T0);
  l.markUp('cache', T0);
  l.markUp('ibkr-historical', T0);
  assert.equal(l.serving, 'ibkr-realtime');
  const sw = l.markDown('ibkr-realtime', T0 + 5_000, 'IBKR error 420: no market data permissions');
  assert.deepEqual(sw, {
    from: 'ibkr-realtime',
    to: 'cache',
    reason: 'ibkr-realtime down: IBKR error 420: no market data permissions',
    at: T0 + 5_000,
  });
  assert.equal(l.markDown('cache', T0 + 6_000, 'stale')?.to, 'ibkr-historical');
  const none = l.markDown('ibkr-historical', T0 + 7_000, 'IBKR connection lost');
  assert.equal(none?.to, null);
  assert.equal(l.serving, null);
  assert.match(none?.reason ?? '', /no rung can serve/);
  assert.deepEqual(l.unavailable(), {
    'ibkr-realtime': 'IBKR error 420: no market data permissions',
    preload: 'no bars yet',
    cache: 'stale',
    'ibkr-historical': 'IBKR connection lost',
  });
});

test('with nothing serving, the first rung that comes up serves at once', () => {
  const l = ladder();
  assert.equal(l.markUp('ibkr-historical', T0, 'IBKR connected')?.to, 'ibkr-historical');
  // A better rung still has to prove itself against a serving one.
  assert.equal(l.markUp('cache', T0 + 1), null);
});

test('a better rung takes over only after climbBackAfterBars fresh bars', () => {
  const l = ladder(ALL, 3);
  l.markUp('cache', T0);
  assert.equal(l.serving, 'cache');
  assert.equal(l.freshBar('ibkr-realtime', T0 + 1), null);
  assert.equal(l.freshBar('ibkr-realtime', T0 + 2), null);
  assert.equal(l.serving, 'cache');
  assert.equal(l.unavailable()['ibkr-realtime'], 'up, 2/3 fresh bars before climbing back');
  const sw = l.freshBar('ibkr-realtime', T0 + 3);
  assert.equal(sw?.from, 'cache');
  assert.equal(sw?.to, 'ibkr-realtime');
  assert.match(sw?.reason ?? '', /ibkr-realtime/);
  assert.deepEqual(l.unavailable(), {});
});

test('a rung that blinks starts its count again: no flapping', () => {
  const l = ladder(ALL, 3);
  l.markUp('cache', T0);
  l.freshBar('ibkr-realtime', T0 + 1);
  l.freshBar('ibkr-realtime', T0 + 2);
  assert.equal(l.markDown('ibkr-realtime', T0 + 3, 'stalled'), null, 'it was not serving');
  // Back again: two more bars are not enough, the count started over.
  assert.equal(l.freshBar('ibkr-realtime', T0 + 4), null);
  assert.equal(l.freshBar('ibkr-realtime', T0 + 5), null);
  assert.equal(l.serving, 'cache');
  assert.equal(l.freshBar('ibkr-realtime', T0 + 6)?.to, 'ibkr-realtime');
});

test('a rung that is already up does not restart its count when marked up again', () => {
  const l = ladder(ALL, 2);
  l.markUp('cache', T0);
  l.freshBar('ibkr-realtime', T0 + 1);
  assert.equal(l.markUp('ibkr-realtime', T0 + 2), null);
  assert.equal(l.freshBar('ibkr-realtime', T0 + 3)?.to, 'ibkr-realtime');
});

test('rungs that are not configured never serve and keep saying so', () => {
  const l = ladder(['preload', 'cache']);
  assert.equal(l.freshBar('ibkr-realtime', T0), null);
  assert.equal(l.markUp('ibkr-historical', T0), null);
  assert.equal(l.markDown('ibkr-realtime', T0, 'IBKR error 420'), null);
  assert.equal(l.serving, null);
  assert.equal(l.isUp('ibkr-realtime'), false);
  l.markUp('cache', T0);
  assert.equal(l.markDown('cache', T0 + 1, 'stale')?.to, null);
  assert.equal(l.unavailable()['ibkr-realtime'], 'not configured');
  assert.equal(l.unavailable()['ibkr-historical'], 'not configured');
});

test('a rung marked down while not serving changes nothing but its reason', () => {
  const l = ladder();
  l.markUp('cache', T0);
  assert.equal(l.markDown('ibkr-historical', T0 + 1, 'IBKR error 162'), null);
  assert.equal(l.serving, 'cache');
  assert.equal(l.reason, 'available');
  assert.equal(l.since, T0);
});

test('ladders sharing one feed table keep each symbol in its own record, and the table fast path agrees with freshBar', () => {
  const table = new FeedTable(3);
  const a = new FeedLadder('AAA', ALL, 2, T0, table, 0);
  const b = new FeedLadder('BBB', ALL, 2, T0, table, 1);
  a.markUp('cache', T0);
  assert.equal(a.serving, 'cache');
  assert.equal(b.serving, null, 'a switch of one symbol leaves its neighbour alone');
  // The serving rung's next bar: counted in the table, nothing can switch.
  assert.equal(countFreshIfServing(table, 0, CACHE), true);
  // Not serving, or another rung: the fast path declines and the ladder decides.
  assert.equal(countFreshIfServing(table, 1, CACHE), false);
  assert.equal(countFreshIfServing(table, 0, REALTIME), false);
  assert.equal(a.freshBar('ibkr-realtime', T0 + 1), null);
  assert.equal(a.unavailable()['ibkr-realtime'], 'up, 1/2 fresh bars before climbing back');
  assert.equal(a.freshBar('ibkr-realtime', T0 + 2)?.to, 'ibkr-realtime');
  assert.equal(b.isUp('ibkr-realtime'), false);
  assert.deepEqual(b.unavailable(), { 'ibkr-realtime': 'no bars yet', preload: 'no bars yet', cache: 'no bars yet', 'ibkr-historical': 'no bars yet' });
});
