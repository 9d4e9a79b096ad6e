/**
 * The order journal file (src/storage/order-log.ts) on a real file system: when a put resolves,
 * group commit, torn tails, compaction, readers in other threads, and the move from LMDB.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { open } from 'lmdb';
import { FileOrderJournal, JOURNAL_FILE } from '../../src/storage/order-log.ts';
import { LmdbOrderJournal } from '../../src/storage/order-journal.ts';
import { openStorage } from '../../src/storage/storage.ts';
import type { OrderRecord, OrderState } from '../../src/storage/types.ts';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-journal-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function order(id: string, createdAt: number, state: OrderState = 'pending', extra: Partial<OrderRecord> = {}): OrderRecord {
  return {
    clientOrderId: id,
    strategy: 's',
    symbol: 'QQQ',
    side: 'buy',
    qty: 10,
    type: 'market',
    broker: 'paper',
    state,
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: createdAt,
    reason: 'r',
    createdAt,
    updatedAt: createdAt,
    ...extra,
  };
}

/** Resolves after every callback already queued (timers of 0 ms, I/O) has run. */
const turn = () => new Promise((r) => setImmediate(r));

test('a put resolves once the record is in the file: a fresh reader of the file finds it', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const j = new FileOrderJournal({ path: file });
  t.after(() => j.close());
  await j.put(order('a', 1));
  await j.put(order('a', 1, 'submitted', { brokerOrderId: 'b-1' }));
  const reader = new FileOrderJournal({ path: file });
  assert.equal(reader.get('a')?.state, 'submitted');
  assert.equal(reader.get('a')?.brokerOrderId, 'b-1');
});

test('records other than pending wait for the next pending record and share its single fdatasync', async (t) => {
  const j = new FileOrderJournal({ path: path.join(tempDir(t), JOURNAL_FILE), lazySyncMs: 60_000 });
  t.after(() => j.close());
  await j.put(order('first', 1));
  const syncs = j.stats().syncs;
  let filled = false;
  const fill = j.put(order('first', 1, 'filled', { filledQty: 10 })).then(() => (filled = true));
  await turn();
  assert.equal(filled, false, 'a fill alone is not synced at once');
  await j.put(order('second', 2));
  await fill;
  assert.equal(j.stats().syncs, syncs + 1, 'one fdatasync for both');
});

test('a record other than pending is synced within lazySyncMs when no order follows it', async (t) => {
  const j = new FileOrderJournal({ path: path.join(tempDir(t), JOURNAL_FILE), lazySyncMs: 1 });
  t.after(() => j.close());
  await j.put(order('a', 1, 'cancelled'));
  assert.equal(j.stats().syncs, 1);
});

test('pending orders put in the same turn are committed together with one fdatasync', async (t) => {
  const j = new FileOrderJournal({ path: path.join(tempDir(t), JOURNAL_FILE) });
  t.after(() => j.close());
  await Promise.all(['a', 'b', 'c', 'd'].map((id, i) => j.put(order(id, i))));
  assert.equal(j.stats().syncs, 1);
  assert.deepEqual(j.all().map((r) => r.clientOrderId), ['a', 'b', 'c', 'd']);
});

test('a torn last frame (a write cut by a crash) is ignored by readers and cut off by the next writer', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const first = new FileOrderJournal({ path: file });
  await first.put(order('a', 1));
  await first.put(order('b', 2));
  const end = first.stats().bytes;
  first.close();
  // The last frame loses its final bytes, as if the machine stopped mid-write.
  fs.truncateSync(file, end - 5);
  const reader = new FileOrderJournal({ path: file });
  assert.deepEqual(reader.all().map((r) => r.clientOrderId), ['a']);
  assert.equal(fs.statSync(file).size, end - 5, 'a reader changes nothing');

  const writer = new FileOrderJournal({ path: file });
  await writer.put(order('c', 3));
  assert.ok(writer.stats().truncatedBytes > 0);
  writer.close();
  const again = new FileOrderJournal({ path: file });
  assert.deepEqual(again.all().map((r) => r.clientOrderId), ['a', 'c']);
});

test('the writer keeps zeros written ahead of its frames, so an append does not grow the file', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const j = new FileOrderJournal({ path: file });
  t.after(() => j.close());
  await j.put(order('a', 1));
  const size = fs.statSync(file).size;
  assert.ok(size >= j.stats().bytes + 512 * 1024, `file ${size} bytes, frames end at ${j.stats().bytes}`);
  await j.put(order('b', 2));
  assert.equal(fs.statSync(file).size, size);
  assert.deepEqual(new FileOrderJournal({ path: file }).all().map((r) => r.clientOrderId), ['a', 'b']);
});

test('a torn frame longer than the one written after it leaves no remnant that reads as a frame', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const first = new FileOrderJournal({ path: file });
  await first.put(order('a', 1));
  await first.put(order('b', 2, 'pending', { reason: 'x'.repeat(2000) }));
  const end = first.stats().bytes;
  first.close();
  const data = fs.readFileSync(file);
  data[end - 3] ^= 0xff; // b's frame is torn
  fs.writeFileSync(file, data);
  const second = new FileOrderJournal({ path: file });
  await second.put(order('c', 3));
  second.close();
  assert.deepEqual(new FileOrderJournal({ path: file }).all().map((r) => r.clientOrderId), ['a', 'c']);
});

test('a frame whose checksum does not match ends the journal there', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const j = new FileOrderJournal({ path: file });
  await j.put(order('a', 1));
  await j.put(order('b', 2));
  const end = j.stats().bytes;
  j.close();
  const data = fs.readFileSync(file);
  data[end - 3] ^= 0xff;
  fs.writeFileSync(file, data);
  assert.deepEqual(new FileOrderJournal({ path: file }).all().map((r) => r.clientOrderId), ['a']);
});

test('a reader in another thread sees what the writer appends, and the rewritten file after a compaction', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const writer = new FileOrderJournal({ path: file });
  const reader = new FileOrderJournal({ path: file });
  assert.equal(reader.get('a'), undefined);
  await writer.put(order('a', 1));
  assert.equal(reader.get('a')?.state, 'pending');
  await writer.put(order('a', 1, 'submitted'));
  assert.equal(reader.get('a')?.state, 'submitted');
  // Many superseded frames: the next writer compacts the file to the live records.
  await Promise.all(Array.from({ length: 1100 }, (_, i) => writer.put(order('a', 1, 'submitted', { updatedAt: i }))));
  writer.close();
  const next = new FileOrderJournal({ path: file });
  await next.put(order('b', 2));
  assert.equal(next.stats().rewritten, true);
  assert.equal(next.stats().frames, 2);
  next.close();
  assert.deepEqual(reader.all().map((r) => [r.clientOrderId, r.updatedAt]), [['a', 1099], ['b', 2]]);
});

test('a file that is not an order journal stops the open with a clear error, and is left alone', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  fs.writeFileSync(file, 'hello, this is not a journal');
  assert.throws(() => new FileOrderJournal({ path: file }), /not a barkeep order journal/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'hello, this is not a journal');
});

test('orders of a data directory from before the journal file are carried over from LMDB, once', async (t) => {
  const dir = tempDir(t);
  const env = open({ path: dir, maxDbs: 16 });
  const old = new LmdbOrderJournal(env);
  await old.put(order('old-1', 1, 'filled', { filledQty: 10, fills: [{ execId: 'e1', qty: 10, price: 5, time: 2, commission: 1 }] }));
  await old.put(order('old-2', 2, 'submitted'));
  await env.close();

  const s = openStorage({ path: dir });
  assert.deepEqual(s.orders.all().map((r) => r.clientOrderId), ['old-1', 'old-2']);
  assert.deepEqual(s.orders.open().map((r) => r.clientOrderId), ['old-2']);
  await s.orders.put(order('new-1', 3));
  await s.close();
  assert.ok(fs.existsSync(path.join(dir, JOURNAL_FILE)));

  const again = openStorage({ path: dir });
  t.after(() => again.close());
  assert.deepEqual(again.orders.all().map((r) => r.clientOrderId), ['old-1', 'old-2', 'new-1']);
  assert.equal(again.orders.get('old-1')?.fills[0].execId, 'e1');
});

test('a bad client order id is refused and nothing is written', async (t) => {
  const file = path.join(tempDir(t), JOURNAL_FILE);
  const j = new FileOrderJournal({ path: file });
  t.after(() => j.close());
  await assert.rejects(j.put(order('', 1)), /clientOrderId must be a non-empty string/);
  await assert.rejects(j.put(order('x'.repeat(401), 1)), /clientOrderId/);
  assert.equal(fs.existsSync(file), false);
});
