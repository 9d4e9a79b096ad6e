import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ArbiterCheckpoints, lastDeliveredKey } from '../../src/actors/arbiter/checkpoints.ts';
import { F64_PER_SLOT, FeedTable } from '../../src/actors/arbiter/feed-table.ts';
import { openStorage } from '../../src/storage/storage.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0);

test('each moved slot is written under its own key once, and a slot of an ended subscription is never written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-ckpt-'));
  const storage = openStorage({ path: dir });
  try {
    const cp = new ArbiterCheckpoints(storage.checkpoints, pino({ level: 'silent' }));
    const keys = ['AAA', 'BBB', 'CCC'].map((s) => lastDeliveredKey('1Min', s));
    const old = new FeedTable(3);
    cp.bind(old, keys);
    old.f64[1 * F64_PER_SLOT] = T0;
    cp.markDirty(old, 1);
    cp.markDirty(old, 1);
    await cp.flush();
    assert.equal(storage.checkpoints.get<number>(keys[1]), T0);
    assert.equal(storage.checkpoints.get<number>(keys[0]), undefined, 'a slot that never moved is not written');

    // A new subscription: the old table's late writes (a warm-up that finished after it) are dropped.
    const next = new FeedTable(3);
    cp.bind(next, keys);
    old.f64[1 * F64_PER_SLOT] = T0 + 60_000;
    cp.markDirty(old, 1);
    next.f64[2 * F64_PER_SLOT] = T0 + 120_000;
    cp.markDirty(next, 2);
    await cp.flush();
    assert.equal(storage.checkpoints.get<number>(keys[1]), T0, 'the ended subscription did not write');
    assert.equal(storage.checkpoints.get<number>(keys[2]), T0 + 120_000);
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
