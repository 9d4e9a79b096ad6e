/**
 * Checks of values the schema's types let through but that would stop the start later, deep in an
 * actor, with a stack trace: a clock start that is not a date, a vendor URL that is not http(s) or
 * ws(s), a data directory that is a file or cannot be written, a strategy that is not built in.
 * Each answers with the usual one-line `config: <key>: ...`.
 *
 * The files' values are checked before the environment is laid over them, so a bad value in a file
 * is reported even when an environment variable overrides it (it would bite the day the variable
 * is unset).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config-error.ts';
import type { Config } from './schema.ts';
import { BUILT_IN_STRATEGIES } from '../actors/trader/strategies/registry.ts';
import { FIRST_MODELLED_YEAR } from '../market/calendar-data.ts';

type Plain = Record<string, unknown>;

const URL_KEYS: Array<[string, string, string[]]> = [
  ['massive', 'rest_url', ['http:', 'https:']],
  ['massive', 'ws_url', ['ws:', 'wss:']],
  ['alpaca', 'data_url', ['http:', 'https:']],
  ['alpaca', 'ws_url', ['ws:', 'wss:']],
];

function section(doc: Plain, name: string): Plain {
  const v = Object.hasOwn(doc, name) ? doc[name] : undefined;
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Plain) : {};
}

function checkClockStart(value: unknown, where: string): void {
  if (typeof value !== 'string') return;
  if (Number.isNaN(Date.parse(value))) {
    throw new ConfigError('runtime.clock_start', `${JSON.stringify(value)}${where} is not a date (ISO-8601, e.g. 2026-03-02T14:30:00Z)`);
  }
  if (Date.parse(value) < Date.UTC(FIRST_MODELLED_YEAR, 0, 1, 5)) {
    throw new ConfigError('runtime.clock_start', `${JSON.stringify(value)}${where} is before ${FIRST_MODELLED_YEAR}, the first year the NYSE calendar is modelled for`);
  }
}

function checkUrl(key: string, value: unknown, protocols: string[], where: string): void {
  if (typeof value !== 'string') return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(key, `${JSON.stringify(value)}${where} is not a URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(key, `${JSON.stringify(value)}${where} must be ${protocols.map((p) => p.slice(0, -1)).join(' or ')}`);
  }
}

/** The values of the configuration files (defaults and BARKEEP_CONFIG), before the environment. */
export function checkFileValues(doc: Plain): void {
  const where = ' (in the configuration file)';
  checkClockStart(section(doc, 'runtime').clock_start, where);
  for (const [sec, key, protocols] of URL_KEYS) checkUrl(`${sec}.${key}`, section(doc, sec)[key], protocols, where);
}

/** The final configuration: the same value checks, the data directory and the strategy name. */
export function checkConfigValues(config: Config): void {
  checkClockStart(config.runtime.clock_start, '');
  for (const [sec, key, protocols] of URL_KEYS) checkUrl(`${sec}.${key}`, (config[sec as 'massive'] as Plain)[key], protocols, '');
  checkDataDir(config.data_dir);
  const strategy = config.trader.strategy;
  if (!config.trader.strategy_module && !BUILT_IN_STRATEGIES.includes(strategy)) {
    throw new ConfigError('trader.strategy', `${JSON.stringify(strategy)} is not built in (built in: ${BUILT_IN_STRATEGIES.join(', ')}); set trader.strategy_module for your own`);
  }
}

/** The data directory must be a writable directory, or creatable inside one. */
export function checkDataDir(dataDir: string): void {
  const abs = path.resolve(dataDir);
  let probe = abs;
  for (;;) {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(probe);
    } catch {
      st = undefined;
    }
    if (st) {
      if (!st.isDirectory()) {
        throw new ConfigError('data_dir', probe === abs ? `${abs} is not a directory` : `${abs} cannot be created: ${probe} is not a directory`);
      }
      // A real write, not access(): root passes access() on a read-only mount.
      const test = path.join(probe, `.barkeep-write-test-${process.pid}`);
      try {
        fs.writeFileSync(test, '');
        fs.rmSync(test, { force: true });
      } catch (err) {
        const why = (err as NodeJS.ErrnoException).code ?? 'not writable';
        throw new ConfigError('data_dir', probe === abs ? `${abs} is not writable (${why})` : `${abs} cannot be created: ${probe} is not writable (${why})`);
      }
      return;
    }
    const parent = path.dirname(probe);
    if (parent === probe) return;
    probe = parent;
  }
}
