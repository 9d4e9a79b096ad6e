import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { openStorage } from '../../src/storage/storage.ts';

const T0 = Date.UTC(2024, 2, 4, 14, 30);
const WRITER = fileURLToPath(new URL('../fixtures/storage-killed-writer.mjs', import.meta.url));

test('a writer killed with SIGKILL right after resolved writes leaves every acknowledged bar readable', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-crash-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [WRITER, dir, String(T0)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked: number[] = [];
  let buffered = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => resolve());
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
      // Kill the moment the 25th write is acknowledged: later writes are in flight.
      if (acked.length >= 25 && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  assert.equal(await exited, 'SIGKILL');
  assert.ok(acked.length >= 25);

  const storage = openStorage({ path: dir });
  try {
    for (const start of acked) {
      for (const symbol of ['QQQ', 'SPY']) {
        const got = storage.bars.get(symbol, '1Min', start);
        assert.ok(got, `${symbol} ${new Date(start).toISOString()} was acknowledged but is missing`);
        const m = (start - T0) / 60_000;
        assert.equal(got.close, 100.5 + m);
        assert.equal(got.trades, m);
      }
    }
    // The store is whole: series are readable end to end and still take writes.
    const all = storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER);
    assert.ok(all.length >= acked.length);
    assert.deepEqual(
      all.slice(0, acked.length).map((b) => b.start),
      acked,
    );
    const last = all[all.length - 1].start + 60_000;
    await storage.bars.put({ ...all[0], start: last });
    assert.equal(storage.bars.latest('QQQ', '1Min')!.start, last);
  } finally {
    await storage.close();
  }
});
