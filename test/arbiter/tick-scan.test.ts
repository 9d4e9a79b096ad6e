/**
 * The arbiter's periodic scan over a large subscription: it reads the cache for every symbol, a
 * slice of symbols per event-loop turn, so a collector notice never waits behind thousands of reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { recordingArbiter } from '../helpers/arbiter-rig.ts';
import { waitFor } from '../helpers/wait.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const S = (m: number) => T0 + m * MIN;

function bar(symbol: string, start: number): Bar {
  return { symbol, barSize: '1Min', start, open: 10, high: 11, low: 9, close: 10.5, volume: 100, vwap: 10.2, trades: 5, source: 'sim', receivedAt: start + MIN };
}

test('the periodic scan of 1,200 symbols catches up every lost notice, a slice per event-loop turn', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-scan-'));
  const storage = openStorage({ path: dir });
  const clock = new ManualClock(S(0) + 3_000);
  const got: ArbiterToTrader[] = [];
  const arbiter = recordingArbiter(storage, clock, 2, (m) => got.push(m));
  try {
    const symbols = Array.from({ length: 1_200 }, (_, i) => `S${String.fromCharCode(65 + (i % 26), 65 + (Math.floor(i / 26) % 26), 65 + Math.floor(i / 676))}`);
    await storage.bars.putMany(symbols.flatMap((s) => [bar(s, S(-2)), bar(s, S(-1))]));
    arbiter.subscribe(symbols, '1Min', {}, true);
    assert.equal(got.filter((m) => m.type === 'warmup').length, symbols.length);
    // Minute 0 reaches the cache, but its notices are lost (sent while the arbiter restarted).
    await storage.bars.putMany(symbols.map((s) => bar(s, S(0))));
    const bars = () => got.filter((m) => m.type === 'bar').length;
    assert.equal(bars(), 0);
    // The next tick (every 5 s of a 1Min subscription) reads the first slice in its own turn...
    clock.set(S(1) + 3_000);
    const first = bars();
    assert.ok(first > 0 && first < symbols.length, `${first} symbols caught up in the tick's own turn`);
    // ...and the rest in the turns after it: every symbol's bar once, in order.
    await waitFor(() => bars() === symbols.length, { what: 'every lost bar handed on', timeoutMs: 5_000, intervalMs: 2 });
    const handed = got.flatMap((m) => (m.type === 'bar' ? [m.symbol] : []));
    assert.deepEqual(new Set(handed).size, symbols.length);
    assert.ok(got.every((m) => m.type !== 'bar' || m.start === S(0)));
  } finally {
    await arbiter.shutdown();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
