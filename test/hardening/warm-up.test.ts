/**
 * Regression from the hostile campaign (issue 12): "decisions across a trader restart". A restarted
 * trader subscribes with the last bar it handled; the arbiter's warm-up used to mark the newest
 * cached bar as delivered, so the bars that reached the cache while the trader was down became
 * warm-up (no decision) instead of live bars. Each bar must be live once, in order, with no hole,
 * across any number of trader restarts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { recordingArbiter } from '../helpers/arbiter-rig.ts';
import { waitFor } from '../helpers/wait.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const S = (m: number) => T0 + m * MIN;

function mkBar(start: number): Bar {
  const p = 100 + ((start / MIN) % 50) / 10;
  return { symbol: 'QQQ', barSize: '1Min', start, open: p, high: p + 0.2, low: p - 0.2, close: p + 0.1, volume: 1_000, vwap: p, trades: 12, source: 'sim', receivedAt: start + MIN };
}

test('decisions across a trader restart: bars cached while the trader was down are live bars, each once, in order, across many restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-warmup-'));
  const storage = openStorage({ path: dir });
  const clock = new ManualClock(S(20));
  let got: ArbiterToTrader[] = [];
  const arbiter = recordingArbiter(storage, clock, 5, (m) => got.push(m));
  try {
    await storage.bars.putMany(Array.from({ length: 20 }, (_, i) => mkBar(S(i))));
    const live: number[] = [];
    const warmedUp = () => waitFor(() => got.some((m) => m.type === 'warmup'), 'the warm-up sent');

    // First start: a fresh subscription warms up on the newest bars; the trader has seen nothing.
    arbiter.subscribe(['QQQ'], '1Min', {}, true);
    await warmedUp();
    let traderLast = Math.max(...got.flatMap((m) => (m.type === 'warmup' ? m.starts : [])));
    assert.equal(traderLast, S(19));

    let next = 20;
    for (let restart = 0; restart < 5; restart++) {
      // The trader handles a few bars live...
      for (let k = 0; k < 2; k++, next++) {
        clock.set(S(next + 1));
        await storage.bars.put(mkBar(S(next)));
        arbiter.onBarsWritten('1Min', 'QQQ', [S(next)]);
      }
      const lastPut = S(next - 1);
      await waitFor(() => got.some((m) => m.type === 'bar' && m.start === lastPut), 'the live bars sent');
      for (const m of got) if (m.type === 'bar') live.push(m.start);
      traderLast = live[live.length - 1];
      // ...then crashes; three bars reach the cache while it is down (the arbiter hands them to nobody).
      got = [];
      arbiter.unsubscribe();
      for (let k = 0; k < 3; k++, next++) {
        clock.set(S(next + 1));
        await storage.bars.put(mkBar(S(next)));
        arbiter.onBarsWritten('1Min', 'QQQ', [S(next)]);
      }
      // The restarted trader subscribes with the last bar it handled.
      got = [];
      arbiter.subscribe(['QQQ'], '1Min', { QQQ: traderLast }, true);
      await warmedUp();
      const warm = got.flatMap((m) => (m.type === 'warmup' ? m.starts : []));
      assert.ok(warm.length > 0, 'a warm-up for the new strategy instance');
      assert.ok(Math.max(...warm) <= traderLast, `warm-up stops at the trader's last bar (${new Date(traderLast).toISOString()})`);
      for (const m of got) if (m.type === 'bar') live.push(m.start);
      got = [];
    }
    // Every bar after the first warm-up was live exactly once, in order, with no hole.
    const expected = Array.from({ length: next - 20 }, (_, i) => S(20 + i));
    assert.deepEqual(live, expected);
  } finally {
    await arbiter.shutdown();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
