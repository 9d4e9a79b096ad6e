/** The barkeep command as a user types it: help, version, exit codes, and the server commands' failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startTwsSimulator } from '../fakes/tws/index.ts';
import { runCli } from '../helpers/serve.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

test('bare barkeep prints its help and exits 0 instead of starting the engine', async () => {
  const r = await runCli([]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: barkeep <command>/);
  for (const c of ['serve', 'status', 'orders', 'fills', 'kill', 'resume', 'config show']) assert.match(r.stdout, new RegExp(`\\n  ${c}\\b`));
  assert.ok(!r.stdout.includes('"msg"'), 'no engine log lines');
});

test('barkeep serve --help prints help and exits 0 instead of starting the engine', async () => {
  const r = await runCli(['serve', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^usage: barkeep serve/);
  assert.match(r.stdout, /node bin\/barkeep\.mjs serve/);
});

test('barkeep --version prints the package version', async () => {
  for (const args of [['--version'], ['status', '--version']]) {
    const r = await runCli(args);
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim().split(' ')[1], pkg.version);
  }
});

test('barkeep check --help exits 0', async () => {
  const r = await runCli(['check', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /usage: barkeep check/);
});

test('barkeep check without a key prints its summary line', async () => {
  const r = await runCli(['check', 'massive']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^FAILED: 0\/\d+ checks passed$/m);
});

test('every server command has --help (exit 0) and refuses bad usage with exit 2', async () => {
  for (const c of ['status', 'orders', 'fills', 'kill', 'resume', 'config']) {
    const help = await runCli([c, '--help']);
    assert.equal(help.code, 0, c);
    assert.match(help.stdout, new RegExp(`^usage: barkeep ${c}`));
    const bad = await runCli([c, '--frobnicate']);
    assert.equal(bad.code, 2, c);
    assert.match(bad.stderr, /frobnicate/);
  }
  assert.equal((await runCli(['orders', '--csv', '--json'])).code, 2);
  assert.equal((await runCli(['config'])).code, 2);
  assert.equal((await runCli(['status', '--url', 'ftp://x'])).code, 2);
});

test('a server command with no server answering exits 1 and says where it looked', async () => {
  // Port 9 (discard) on loopback: nothing barkeep-like listens there.
  const r = await runCli(['status', '--url', 'http://127.0.0.1:9']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot reach barkeep at http:\/\/127\.0\.0\.1:9/);
});

test('barkeep config show without a server lists the files and the environment with their sources', async () => {
  const r = await runCli(['config', 'show', '--url', 'http://127.0.0.1:9'], {
    yaml: 'collector:\n  symbols: [IWM]\n',
    env: { BARKEEP_PORT: '9123', MASSIVE_API_KEY: 'do-not-print-me' },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /server not reachable/);
  assert.match(r.stdout, /^collector\.symbols\s+\["IWM"\]\s+\(file .*local\.yaml\)$/m);
  assert.match(r.stdout, /^server\.port\s+9123\s+\(environment BARKEEP_PORT\)$/m);
  assert.match(r.stdout, /^collector\.bar_size\s+"1Min"\s+\(default\)$/m);
  assert.ok(!r.stdout.includes('do-not-print-me'));
});

test('barkeep serve with a bad strategy param stops with one config: line and exit 2, before any actor starts', async () => {
  const r = await runCli(['serve'], { yaml: 'trader:\n  strategy_params: { fats: 3 }\n', env: { BARKEEP_PORT: '0' } });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), 'barkeep: config: trader.strategy_params.fats: strategy "sma-crossover": unknown param "fats"');
  assert.ok(!r.stdout.includes('collector started'));
});

test('barkeep serve on an IBKR live port without ibkr.live: true refuses with a config: line naming the account it would trade', async () => {
  const tws = await startTwsSimulator({ port: 7496, accounts: ['U1112223'], farmStatus: false });
  try {
    const r = await runCli(['serve'], { yaml: 'ibkr:\n  enabled: true\n  port: 7496\n', env: { BARKEEP_PORT: '0' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^barkeep: config: ibkr\.live: ibkr\.port 7496 is TWS live trading \(real money, account U1112223\); set ibkr\.live: true/);
    assert.deepEqual(tws.placedOrders, []);
  } finally {
    await tws.close();
  }
});
