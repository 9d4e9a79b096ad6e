/**
 * Regressions from the hostile campaign (issue 12): start-up errors that were stack traces from
 * inside an actor, and a YAML `__proto__:` key that vanished. Each now stops the start with one
 * line, `config: <key>: ...`, when the config is read.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { runCli } from '../helpers/serve.ts';

const dir = mkdtempSync(join(tmpdir(), 'barkeep-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(yaml: string, env: Record<string, string> = {}) {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig({ env: { BARKEEP_CONFIG: file, BARKEEP_DATA_DIR: join(dir, 'data'), ...env } });
}

function refused(yaml: string, key: string, message: RegExp, env: Record<string, string> = {}): void {
  assert.throws(
    () => load(yaml, env),
    (err: unknown) => err instanceof ConfigError && err.key === key && message.test(err.message) && !err.message.includes('\n'),
    `${JSON.stringify(yaml)} is refused as ${key}`,
  );
}

test('start-up errors that are not one line: a clock start that is not a date is a config error', () => {
  refused('runtime:\n  clock_start: "not a date"\n', 'runtime.clock_start', /^config: runtime\.clock_start: "not a date" .*is not a date/);
  refused('runtime:\n  clock_start: "1990-01-02T15:00:00Z"\n', 'runtime.clock_start', /before 2001/);
  assert.equal(load('runtime:\n  clock_start: "2026-01-05T15:00:00Z"\n').runtime.clock_start, '2026-01-05T15:00:00Z');
});

test('start-up errors that are not one line: a vendor URL that is not http(s) is refused, even when the environment overrides it', () => {
  refused('massive:\n  rest_url: "ftp://example.com"\n', 'massive.rest_url', /must be http or https/);
  refused('alpaca:\n  data_url: "file:///etc/passwd"\n', 'alpaca.data_url', /must be http or https/);
  refused('massive:\n  ws_url: "https://socket.example.com"\n', 'massive.ws_url', /must be ws or wss/);
  // The file's bad value is reported although MASSIVE_REST_URL replaces it today.
  refused('massive:\n  rest_url: "ftp://example.com"\n', 'massive.rest_url', /in the configuration file/, { MASSIVE_REST_URL: 'https://api.example.com' });
  refused('', 'massive.rest_url', /must be http or https/, { MASSIVE_REST_URL: 'gopher://x' });
});

test('start-up errors that are not one line: a data directory that is a file, or under a file, or not writable', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  refused('', 'data_dir', /is not a directory/, { BARKEEP_DATA_DIR: file });
  refused('', 'data_dir', /cannot be created: .* is not a directory/, { BARKEEP_DATA_DIR: join(file, 'data') });
  refused('', 'data_dir', /not writable/, { BARKEEP_DATA_DIR: '/proc/barkeep-data' });
  if (process.getuid?.() !== 0) {
    const ro = join(dir, 'read-only');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    refused('', 'data_dir', /is not writable/, { BARKEEP_DATA_DIR: ro });
    chmodSync(ro, 0o700);
  }
  const nested = join(dir, 'with.dots', 'data');
  assert.equal(load('', { BARKEEP_DATA_DIR: nested }).data_dir, nested, 'a directory still to be created is fine');
});

test('names from input looked up on prototypes: a YAML __proto__ key is refused as unknown, and so is a strategy named constructor', () => {
  refused('trader:\n  __proto__:\n    autostart: false\n', 'trader.__proto__', /unknown key/);
  refused('__proto__:\n  data_dir: x\n', '__proto__', /unknown key/);
  refused('trader:\n  strategy: constructor\n', 'trader.strategy', /is not built in \(built in: sma-crossover, mean-reversion\)/);
  refused('trader:\n  strategy: toString\n', 'trader.strategy', /is not built in/);
});

test('start-up errors that are not one line: barkeep serve prints one config line and exits 2', async () => {
  const file = join(dir, 'a-file-too');
  writeFileSync(file, 'x');
  const r = await runCli(['serve'], { env: { BARKEEP_DATA_DIR: file, BARKEEP_PORT: '0' } });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^barkeep: config: data_dir: .* is not a directory$/m);
  assert.equal(r.stdout, '', 'no actor started, nothing logged');
});
