/** The config loader as `barkeep serve` uses it: local.yaml, strategy params, sources, start-up checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configLayers, ConfigError, DEFAULT_CONFIG_PATH, loadConfig, loadConfigFrom } from '../../src/config/load.ts';
import { configWarnings, formatSettings, settingsWithSources } from '../../src/config/sources.ts';
import { checkBarSizes, checkIbkrLive, checkStrategy } from '../../src/config/startup.ts';
import { startTwsSimulator } from '../fakes/tws/index.ts';

const USER_STRATEGY = fileURLToPath(new URL('../fixtures/user-strategy.ts', import.meta.url));

/** A config folder like the repo's: default.yaml, and local.yaml when given. */
function configDir(local?: string): { defaultsPath: string; dir: string; [Symbol.dispose](): void } {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-config-'));
  const defaultsPath = join(dir, 'default.yaml');
  copyFileSync(DEFAULT_CONFIG_PATH, defaultsPath);
  if (local !== undefined) writeFileSync(join(dir, 'local.yaml'), local);
  return { defaultsPath, dir, [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }) };
}

test('config/local.yaml beside the defaults is loaded when present, without BARKEEP_CONFIG', () => {
  using c = configDir('collector:\n  symbols: [IWM]\n');
  const config = loadConfig({ env: {}, defaultsPath: c.defaultsPath });
  assert.deepEqual(config.collector.symbols, ['IWM']);
});

test('BARKEEP_CONFIG names another file, which is read instead of config/local.yaml', () => {
  using c = configDir('collector:\n  symbols: [IWM]\n');
  const other = join(c.dir, 'other.yaml');
  writeFileSync(other, 'collector:\n  symbols: [DIA]\n');
  const config = loadConfig({ env: { BARKEEP_CONFIG: other }, defaultsPath: c.defaultsPath });
  assert.deepEqual(config.collector.symbols, ['DIA']);
});

test('a module strategy in the config file does not get the default strategy_params (the allowShort crash)', async () => {
  using c = configDir(`trader:\n  strategy: module\n  strategy_module: ${JSON.stringify(USER_STRATEGY)}\n`);
  const config = loadConfig({ env: {}, defaultsPath: c.defaultsPath });
  assert.deepEqual(config.trader.strategy_params, {});
  await checkStrategy(config); // the README's example module builds: no "Unrecognized key: allowShort"
});

test('strategy_params in a file replace the default params whole, they are not merged key by key', () => {
  using c = configDir('trader:\n  strategy_params: { fast: 5, slow: 20 }\n');
  const config = loadConfig({ env: {}, defaultsPath: c.defaultsPath });
  assert.deepEqual(config.trader.strategy_params, { fast: 5, slow: 20 });
});

for (const [params, key, message] of [
  ['{ fats: 3 }', 'trader.strategy_params.fats', /unknown param "fats"/],
  ['{ fast: 40, slow: 20 }', 'trader.strategy_params.slow', /must be greater than fast/],
] as const) {
  test(`a bad strategy param (${params}) refuses the start with a config: line naming ${key}`, async () => {
    using c = configDir(`trader:\n  strategy_params: ${params}\n`);
    const config = loadConfig({ env: {}, defaultsPath: c.defaultsPath });
    await assert.rejects(checkStrategy(config), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, key);
      assert.match(err.message, /^config: trader\.strategy_params\./);
      assert.match(err.message, message);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
  });
}

test('config show lists each setting with its source: default, file, environment', () => {
  using c = configDir('collector:\n  symbols: [IWM]\n');
  const layers = configLayers({ env: { BARKEEP_PORT: '9001', MASSIVE_API_KEY: 'secret-key-123' }, defaultsPath: c.defaultsPath });
  const settings = settingsWithSources(loadConfigFrom(layers), layers);
  const by = Object.fromEntries(settings.map((s) => [s.key, s]));
  assert.equal(by['collector.symbols'].source, `file ${join(c.dir, 'local.yaml')}`);
  assert.equal(by['server.port'].source, 'environment BARKEEP_PORT');
  assert.equal(by['server.port'].value, 9001);
  assert.equal(by['collector.bar_size'].source, 'default');
  assert.equal(by['massive.api_key'].value, '[redacted]');
  assert.equal(by['massive.api_key'].source, 'environment MASSIVE_API_KEY');
  assert.equal(by['trader.strategy_params'].source, 'default', 'strategy params are one setting');
  const text = formatSettings(settings);
  assert.ok(!text.includes('secret-key-123'));
  assert.match(text, /^server\.port\s+9001\s+\(environment BARKEEP_PORT\)$/m);
});

test('IB_HOST or IB_PORT set while ibkr.enabled is false is warned about', () => {
  const env = { IB_HOST: '10.0.0.5', IB_PORT: '7497' };
  const config = loadConfig({ env });
  assert.deepEqual(configWarnings(config, env), ['IB_HOST, IB_PORT are set but ibkr.enabled is false: IBKR is not used']);
  assert.deepEqual(configWarnings(loadConfig({ env: {} }), {}), []);
});

test('the IBKR live port refuses to start without ibkr.live: true and names the account TWS would trade', async () => {
  // The TWS simulator on IB Gateway's live port, logged in to a live account.
  const tws = await startTwsSimulator({ port: 4001, accounts: ['U7654321'], farmStatus: false });
  try {
    const config = loadConfig({ env: {}, overrides: { ibkr: { enabled: true, port: 4001 } } });
    await assert.rejects(
      checkIbkrLive(config),
      (err: unknown) => err instanceof ConfigError && err.key === 'ibkr.live' && /IB Gateway live trading \(real money, account U7654321\)/.test(err.message) && /ibkr\.live: true/.test(err.message),
    );
    const live = loadConfig({ env: {}, overrides: { ibkr: { enabled: true, port: 4001, live: true } } });
    assert.match((await checkIbkrLive(live)) ?? '', /^IBKR LIVE: port 4001 is IB Gateway live trading; .* real money in account U7654321$/);
    // The guard only read the account: it asked TWS for nothing and placed nothing.
    assert.deepEqual(tws.requestLog, []);
    assert.deepEqual(tws.placedOrders, []);
    assert.equal(tws.connections, 2, 'one short connection per check');
  } finally {
    await tws.close();
  }
});

test('the IBKR live-money guard says why it cannot name the account when TWS is not reachable, and still refuses', async () => {
  const config = loadConfig({ env: {}, overrides: { ibkr: { enabled: true, port: 4001 } } });
  await assert.rejects(
    checkIbkrLive(config),
    (err: unknown) => err instanceof ConfigError && err.key === 'ibkr.live' && /account unknown: 127\.0\.0\.1:4001: .*(ECONNREFUSED|connect)/i.test(err.message),
  );
});

test('trader.bar_size above the collected size starts (it is rolled up); an autostarted one that cannot be built refuses with a config: line', () => {
  checkBarSizes(loadConfig({ env: {}, overrides: { collector: { bar_size: '1Min' }, trader: { bar_size: '5Min' } } }));
  checkBarSizes(loadConfig({ env: {}, overrides: { collector: { bar_size: '5Min' }, trader: { bar_size: '1Day' } } }));
  assert.throws(
    () => checkBarSizes(loadConfig({ env: {}, overrides: { collector: { bar_size: '15Min' }, trader: { bar_size: '5Min' } } })),
    (err: unknown) => err instanceof ConfigError && err.key === 'trader.bar_size' && /5Min bars cannot be built from the 15Min bars/.test(err.message),
  );
  // Without autostart nothing waits on it: POST /live/start answers 409 instead.
  checkBarSizes(loadConfig({ env: {}, overrides: { collector: { bar_size: '15Min' }, trader: { bar_size: '5Min', autostart: false } } }));
});

test('the IBKR paper ports start without ibkr.live', async () => {
  for (const port of [7497, 4002]) assert.equal(await checkIbkrLive(loadConfig({ env: {}, overrides: { ibkr: { enabled: true, port } } })), null);
});

test('strategy params are snake_case (allow_short, entry_z), camelCase still read, and errors name them as written', async () => {
  const ok = loadConfig({ env: {}, overrides: { trader: { strategy: 'mean-reversion', strategy_params: { entry_z: 1.5, exit_z: 0.2, allow_short: true } } } });
  await checkStrategy(ok);
  const bad = loadConfig({ env: {}, overrides: { trader: { strategy_params: { allow_short: 'yes' } } } });
  await assert.rejects(checkStrategy(bad), (err: unknown) => err instanceof ConfigError && err.key === 'trader.strategy_params.allow_short');
  assert.equal(loadConfig({ env: {} }).trader.strategy_params.allow_short, true, 'the default file uses snake_case');
});

test('symbols in the config are read in upper case, as the CLI reads them', () => {
  const config = loadConfig({ env: {}, overrides: { collector: { symbols: ['qqq', 'brk.b'] } } });
  assert.deepEqual(config.collector.symbols, ['QQQ', 'BRK.B']);
});
