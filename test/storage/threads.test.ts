import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Bar } from '../../src/market/bar.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';

const T0 = Date.UTC(2024, 2, 4, 14, 30);
const MIN = 60_000;
const WORKER = new URL('../fixtures/storage-worker.mjs', import.meta.url);

const cleanups: (() => Promise<unknown> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function bar(over: Partial<Bar> = {}): Bar {
  return {
    symbol: 'QQQ',
    barSize: '1Min',
    start: T0,
    open: 430.1,
    high: 430.9,
    low: 429.8,
    close: 430.5,
    volume: 1000,
    vwap: 430.4,
    trades: 10,
    source: 'massive',
    receivedAt: T0 + 61_000,
    ...over,
  };
}

/** A worker with its own handle on the store at `dir`, called like a function. */
async function storeWorker(dir: string) {
  const worker = new Worker(WORKER, { workerData: { path: dir } });
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  worker.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id)!;
    pending.delete(m.id);
    if (m.error) p.reject(new Error(m.error));
    else p.resolve(m.result);
  });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  const call = <T>(op: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, op, ...args });
    });
  cleanups.push(async () => {
    await call('close').catch(() => undefined);
    await worker.terminate();
  });
  return call;
}

function tempStorage(): { dir: string; storage: Storage } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-threads-'));
  const storage = openStorage({ path: dir });
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => storage.close());
  return { dir, storage };
}

test('a reader in another worker thread sees each bar as soon as its write resolves', async () => {
  const { dir, storage } = tempStorage();
  const call = await storeWorker(dir);
  // The worker reads first, so it holds a snapshot older than every write below.
  assert.equal(await call('readInto', { symbol: 'QQQ', size: '1Min', start: T0 }), null);
  for (let m = 0; m < 20; m++) {
    await storage.bars.put(bar({ start: T0 + m * MIN, close: 430 + m / 100 }));
    const seen = (await call('readInto', { symbol: 'QQQ', size: '1Min', start: T0 + m * MIN })) as { close: number } | null;
    assert.ok(seen, `bar ${m} not visible to the worker`);
    assert.equal(seen.close, 430 + m / 100);
    const latest = (await call('latestInto', { symbol: 'QQQ', size: '1Min', refresh: true })) as { start: number };
    assert.equal(latest.start, T0 + m * MIN);
  }
});

test('a correction written in one thread replaces what another thread reads', async () => {
  const { dir, storage } = tempStorage();
  const call = await storeWorker(dir);
  await call('putMany', { bars: [bar({ close: 430.2 })] });
  assert.equal(storage.bars.get('QQQ', '1Min', T0)!.close, 430.2);
  await storage.bars.put(bar({ close: 430.3 }));
  const seen = (await call('get', { symbol: 'QQQ', size: '1Min', start: T0 })) as Bar;
  assert.equal(seen.close, 430.3);
});

test('two threads writing different sources for the same bars at once leave the higher-precedence source everywhere', async () => {
  const { dir, storage } = tempStorage();
  const call = await storeWorker(dir);
  const n = 300;
  const keys = Array.from({ length: n }, (_, i) => T0 + i * MIN);
  const fromWorker = keys.map((start) => bar({ start, source: 'alpaca', close: 430.4 }));
  const fromMain = keys.map((start) => bar({ start, source: 'massive', close: 430.5 }));
  // Interleave: both sides write in slices, concurrently.
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < n; i += 30) {
    writes.push(call('putMany', { bars: fromWorker.slice(i, i + 30) }));
    writes.push(storage.bars.putMany(fromMain.slice(i, i + 30)));
  }
  await Promise.all(writes);
  const stored = storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER);
  assert.equal(stored.length, n);
  assert.ok(stored.every((b) => b.source === 'massive' && b.close === 430.5));
  const workerStats = (await call('stats')) as { writes: number; shadowed: number };
  const mainStats = storage.bars.stats();
  // Every alpaca bar either landed first (then replaced by massive) or was shadowed.
  assert.equal(workerStats.writes + workerStats.shadowed, n);
  assert.equal(mainStats.writes, n);
  assert.equal(mainStats.shadowed, 0);
});
