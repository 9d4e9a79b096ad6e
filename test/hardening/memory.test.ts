/**
 * Regression from the hostile campaign (issue 12): "memory grows with every symbol asked for".
 * 50,000 distinct unknown symbols on GET /bars/{symbol} kept ~615 bytes of heap each, for good:
 * the bar store's per-symbol key buffers. They are bounded now; the drill (`npm run drill`) measures
 * the heap before and after through HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { KeyBuffers } from '../../src/storage/bar-key.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { KEY_BUFFER_SYMBOLS } from '../../src/storage/bar-store.ts';
import { queryBars } from '../../src/storage/bar-query.ts';

test('memory grows with every symbol asked for: key buffers are kept for a bounded number of symbols', () => {
  const keys = new KeyBuffers(100);
  for (let i = 0; i < 5_000; i++) keys.add(`S${i.toString(36).toUpperCase()}`, '1Min');
  assert.equal(keys.size, 100);
  assert.equal(keys.get('S0', '1Min'), undefined, 'the oldest went');
  assert.ok(keys.get(`S${(4_999).toString(36).toUpperCase()}`, '1Min'), 'the newest stays');
});

test('memory grows with every symbol asked for: reading twice as many unknown symbols as the bound through the bar query keeps at most the bound of key series', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-memory-'));
  const storage = openStorage({ path: dir });
  try {
    for (let i = 0; i < 2 * KEY_BUFFER_SYMBOLS; i++) {
      const bars = queryBars(storage.bars, { symbol: `U${i.toString(36).toUpperCase()}`, barSize: '1Min', limit: 10 });
      assert.equal(bars.length, 0);
    }
    const held = (storage.bars as unknown as { keys: KeyBuffers }).keys;
    assert.ok(held.size <= KEY_BUFFER_SYMBOLS, `${held.size} symbols hold key buffers`);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
