/** Where the log goes: pretty lines when asked (a terminal picks it by itself), a rotated file when configured. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, until } from '../helpers/serve.ts';
import { resolveFormat } from '../../src/runtime/log-output.ts';

const BIN = fileURLToPath(new URL('../../bin/barkeep.mjs', import.meta.url));

test('log.format auto is pretty on a terminal and JSON otherwise', () => {
  assert.equal(resolveFormat('auto', true), 'pretty');
  assert.equal(resolveFormat('auto', false), 'json');
  assert.equal(resolveFormat('json', true), 'json');
});

test('with log.format pretty the lines are readable text, not JSON, from every thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-pretty-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), 'log:\n  format: pretty\n');
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BARKEEP_PORT: '0', BARKEEP_DATA_DIR: join(dir, 'data'), BARKEEP_CONFIG: join(dir, 'c.yaml') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "barkeep serving" line: ${out.slice(-2000)}`)), 30_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('barkeep serving') && out.includes('collector started')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    const serving = out.split('\n').find((l) => l.includes('barkeep serving'))!;
    assert.throws(() => JSON.parse(serving), 'a pretty line is not JSON');
    assert.match(serving, /INFO/);
    assert.match(out.split('\n').find((l) => l.includes('collector started'))!, /INFO/, "an actor thread's line is pretty too");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log.file gets the JSON lines too and is rotated past log.rotate_size_mb, keeping rotate_keep files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-logfile-'));
  const file = join(dir, 'logs', 'barkeep.log');
  try {
    // An accelerated clock (a bar per second) keeps lines coming after the start-up burst.
    const fast = 'runtime:\n  clock: accelerated\n  clock_speed: 60\n  clock_start: "2026-01-05T15:00:00Z"\n';
    await using app = await serve({ yaml: `${fast}log:\n  file: ${JSON.stringify(file)}\n  rotate_size_mb: 0.002\n  rotate_keep: 2\n` });
    await until(async () => existsSync(`${file}.1`), 'a rotated log file', 20_000);
    await until(async () => existsSync(file) && readFileSync(file, 'utf8').length > 0, 'lines in the new file after rotation', 20_000);
    const lines = readFileSync(`${file}.1`, 'utf8').trim().split('\n');
    for (const l of lines) JSON.parse(l);
    assert.ok(
      lines.some((l) => JSON.parse(l).actor),
      "actor threads' lines reach the file",
    );
    assert.ok(!existsSync(`${file}.3`), 'at most rotate_keep old files');
    void app;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
