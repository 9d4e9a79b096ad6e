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

test('a 3,000-symbol bar close is written in one go per chunk and read back after a reopen; a cleared position is deleted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-ckpt-'));
  const symbols = Array.from({ length: 3000 }, (_, i) => `S${i}.X`);
  const keys = symbols.map((s) => lastDeliveredKey('1Min', s));
  let storage = openStorage({ path: dir });
  try {
    const cp = new ArbiterCheckpoints(storage.checkpoints, pino({ level: 'silent' }));
    cp.writeSubscription(symbols, '1Min');
    const table = new FeedTable(symbols.length);
    cp.bind(table, keys);
    for (let i = 0; i < symbols.length; i++) {
      table.f64[i * F64_PER_SLOT] = T0;
      cp.markDirty(table, i);
    }
    await cp.flush();
    // The next close moves every symbol but one, whose position is cleared.
    for (let i = 0; i < symbols.length; i++) {
      table.f64[i * F64_PER_SLOT] = i === 7 ? Number.NaN : T0 + 60_000;
      cp.markDirty(table, i);
    }
    // Left to the turn-by-turn writes (more than one chunk); flush() then waits for what is left.
    await new Promise((r) => setImmediate(r));
    await cp.flush();
    await storage.close();

    storage = openStorage({ path: dir });
    const read = new ArbiterCheckpoints(storage.checkpoints, pino({ level: 'silent' })).readSubscription();
    assert.deepEqual(read?.subscription, { symbols, barSize: '1Min' });
    assert.equal(Object.keys(read!.after).length, symbols.length - 1);
    assert.equal(read!.after['S7.X'], undefined, 'the cleared position was deleted');
    assert.equal(read!.after['S0.X'], T0 + 60_000);
    assert.equal(read!.after['S2999.X'], T0 + 60_000);
    assert.ok(Object.values(read!.after).every((t) => t === T0 + 60_000));
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
