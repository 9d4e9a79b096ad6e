/**
 * Hardening defect 9, "two processes, one data directory": a second `barkeep serve` on a data
 * directory in use (or on a port in use) must refuse before any actor opens the journal, because
 * two trading loops on one journal double every order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, serve } from '../helpers/serve.ts';
import { lockDataDir, DataDirInUseError, LOCK_FILE } from '../../src/storage/data-dir-lock.ts';

/** Lines an actor writes once it runs: none may come from a process that was refused. */
function actorLines(out: string): string[] {
  const ran = new Set(['order manager started', 'trading loop started', 'strategy warmed up', 'barkeep serving']);
  return out.split('\n').filter((l) => {
    try {
      const rec = JSON.parse(l) as { msg?: string; actor?: string; name?: string };
      return rec.actor !== undefined || ran.has(rec.msg ?? '') || (rec.name !== undefined && rec.name !== 'barkeep');
    } catch {
      return false;
    }
  });
}

test('a second barkeep on the same data directory refuses to start, naming the process that holds it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'barkeep-lock.v2-'));
  const dataDir = join(root, 'bk.data');
  try {
    await using first = await serve({ env: { BARKEEP_DATA_DIR: dataDir } });
    const second = await runCli(['serve'], { env: { BARKEEP_DATA_DIR: dataDir, BARKEEP_PORT: '0' }, timeoutMs: 30_000 });
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`in use by barkeep pid ${first.child.pid}`));
    assert.ok(second.stderr.includes(first.url), `the refusal names the URL of the holder: ${second.stderr}`);
    assert.ok(actorLines(first.lines.join('\n')).length > 0, 'the holder\'s actors do log, so their absence below means something');
    assert.deepEqual(actorLines(second.stdout), [], 'no actor ran in the refused process');
    // The first process is untouched and still the holder.
    assert.equal((await first.get('/health')).status, 200);
    assert.equal(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid, first.child.pid);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a second barkeep on a port in use refuses before any actor runs', async () => {
  await using first = await serve();
  const port = new URL(first.url).port;
  const second = await runCli(['serve'], { env: { BARKEEP_PORT: port }, timeoutMs: 30_000 });
  assert.equal(second.code, 1);
  assert.match(second.stderr, /EADDRINUSE|address already in use/);
  assert.deepEqual(actorLines(second.stdout), [], 'no collector, order manager or trading loop started');
  assert.equal((await first.get('/health')).status, 200);
});

test('after a SIGKILL the data directory is free again at once (no stale lock)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'barkeep-lock-'));
  const dataDir = join(root, 'data');
  try {
    const first = await serve({ env: { BARKEEP_DATA_DIR: dataDir } });
    await first.stop('SIGKILL');
    // The dead process's pid file is still there; the lock itself died with the process.
    assert.equal(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid, first.child.pid);
    await using again = await serve({ env: { BARKEEP_DATA_DIR: dataDir } });
    assert.equal((await again.get('/health')).status, 200);
    assert.equal(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid, again.child.pid);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the lock is exclusive within a process too, and released by release()', async () => {
  const root = mkdtempSync(join(tmpdir(), 'barkeep-lock-'));
  try {
    const a = await lockDataDir(join(root, 'd.v1'));
    await assert.rejects(lockDataDir(join(root, 'd.v1')), (err: unknown) => {
      assert.ok(err instanceof DataDirInUseError);
      assert.equal(err.code, 'DATA_DIR_IN_USE');
      assert.equal(err.holder?.pid, process.pid);
      return true;
    });
    // The same directory through another spelling of its path is the same directory.
    await assert.rejects(lockDataDir(join(root, 'x', '..', 'd.v1')), DataDirInUseError);
    await a.release();
    const b = await lockDataDir(join(root, 'd.v1'));
    await b.release();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
