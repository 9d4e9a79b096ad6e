/**
 * Which rung serves after the warm-up without IBKR: the cache at once when it is fresh (its switch
 * paid at the subscription, not by the first live bar), the preload while the cache is stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arbiter } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import { recordingArbiter } from '../helpers/arbiter-rig.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const S = (m: number) => T0 + m * MIN;

function bar(symbol: string, start: number): Bar {
  return { symbol, barSize: '1Min', start, open: 10, high: 11, low: 9, close: 10.5, volume: 100, vwap: 10.2, trades: 5, source: 'sim', receivedAt: start + MIN };
}

async function withArbiter(now: number, body: (a: Arbiter, storage: Storage, got: ArbiterToTrader[], clock: ManualClock) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-rung-'));
  const storage = openStorage({ path: dir });
  const clock = new ManualClock(now);
  const got: ArbiterToTrader[] = [];
  const arbiter = recordingArbiter(storage, clock, 3, (m) => got.push(m));
  try {
    await body(arbiter, storage, got, clock);
  } finally {
    await arbiter.shutdown();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const feeds = (got: ArbiterToTrader[]) => got.flatMap((m) => (m.type === 'feed' ? [m.rung] : []));
const bars = (got: ArbiterToTrader[]) => got.flatMap((m) => (m.type === 'bar' ? [m.start] : []));

test('without IBKR a cache that is stale at the warm-up leaves the preload serving until its next bar', async () => {
  // The newest cached bar ended 20 minutes ago (cache_max_age 5 minutes): the cache is stale.
  await withArbiter(S(20) + 3_000, async (arbiter, storage, got, clock) => {
    await storage.bars.putMany([bar('QQQ', S(-2)), bar('QQQ', S(-1))]);
    arbiter.subscribe(['QQQ'], '1Min', {}, true);
    assert.equal(arbiter.status().feed.QQQ.rung, 'preload');
    assert.deepEqual(feeds(got), ['preload']);
    // The collector catches up: the cache's next bar ends the preload and is handed on.
    clock.set(S(21) + 3_000);
    await storage.bars.putMany([bar('QQQ', S(20))]);
    arbiter.onBarsWritten('1Min', 'QQQ', [S(20)]);
    assert.equal(arbiter.status().feed.QQQ.rung, 'cache');
    assert.deepEqual(feeds(got), ['preload', 'cache']);
    assert.deepEqual(bars(got), [S(20)]);
  });
});

test('without IBKR a fresh cache serves from the warm-up on, with one switch at the subscription', async () => {
  await withArbiter(S(0) + 3_000, async (arbiter, storage, got, clock) => {
    await storage.bars.putMany([bar('QQQ', S(-2)), bar('QQQ', S(-1))]);
    arbiter.subscribe(['QQQ'], '1Min', {}, true);
    assert.deepEqual(feeds(got), ['cache']);
    assert.match(arbiter.status().feed.QQQ.unavailable.preload ?? '', /warm-up delivered \(warm-up: 2 bars preloaded\)/);
    for (let m = 0; m < 3; m++) {
      clock.set(S(m + 1) + 3_000);
      await storage.bars.putMany([bar('QQQ', S(m))]);
      arbiter.onBarsWritten('1Min', 'QQQ', [S(m)]);
    }
    assert.deepEqual(bars(got), [S(0), S(1), S(2)]);
    assert.deepEqual(feeds(got), ['cache'], 'the live bars switched nothing');
  });
});
