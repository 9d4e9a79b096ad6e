/**
 * Loads the configuration: config/default.yaml, then config/local.yaml when it exists (or instead
 * the YAML file BARKEEP_CONFIG names), then the environment. Where each setting came from is kept
 * (sources.ts) for the start-up log and `barkeep config show`. The result is checked against one schema; any problem refuses the start with a
 * ConfigError naming the key's path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { configSchema, type Config } from './schema.ts';
import { checkConfigValues, checkFileValues } from './checks.ts';
import { ConfigError } from './config-error.ts';

export { ConfigError };

export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Lays `over` onto `base`: objects merge key by key, anything else replaces. Keys are set as own
 * properties, so a YAML `__proto__:` stays a key (and is refused as unknown) instead of vanishing
 * into the prototype.
 */
function overlay(base: Plain, over: Plain, path = ''): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const here = path ? `${path}.${k}` : k;
    const cur = Object.hasOwn(out, k) ? out[k] : undefined;
    const value = isPlain(v) && isPlain(cur) && !REPLACED_WHOLE.has(here) ? overlay(cur, v, here) : v;
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Mappings a layer replaces rather than merges into: a strategy's params belong to that strategy,
 * so the default strategy's params never leak into another strategy's (or a module's).
 */
const REPLACED_WHOLE = new Set(['trader.strategy_params']);

/** A layer that names another strategy (or module) without params starts from none. */
function resetParamsOnStrategyChange(doc: Plain): Plain {
  const t = doc.trader;
  if (!isPlain(t) || 'strategy_params' in t) return doc;
  if (!('strategy' in t) && !('strategy_module' in t)) return doc;
  return { ...doc, trader: { ...t, strategy_params: {} } };
}

/** The YAML file laid over the defaults: BARKEEP_CONFIG's, else config/local.yaml beside the defaults when present. */
export function configFilePath(env: NodeJS.ProcessEnv, defaultsPath: string = DEFAULT_CONFIG_PATH): string | null {
  if (env.BARKEEP_CONFIG) return env.BARKEEP_CONFIG;
  const local = join(dirname(defaultsPath), 'local.yaml');
  return existsSync(local) ? local : null;
}

function readYaml(path: string, what: string): Plain {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('', `${what} ${path} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc == null) return {};
  if (!isPlain(doc)) throw new ConfigError('', `${what} ${path} must hold a mapping of keys`);
  return doc;
}

/** The seed's `polygon:` section is an alias of `massive:`; `massive:` wins where both set a key. */
function foldPolygonAlias(doc: Plain): Plain {
  if (!('polygon' in doc)) return doc;
  const { polygon, ...rest } = doc;
  if (!isPlain(polygon)) throw new ConfigError('polygon', 'must be a mapping (it is read as massive:)');
  return { ...rest, massive: overlay(polygon, isPlain(rest.massive) ? rest.massive : {}) };
}

function intFromEnv(name: string, value: string, key: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(key, `${name}=${JSON.stringify(value)} is not a whole number`);
  return Number(value);
}

/** Environment variables (the names in docs/architecture.md, Configuration) as a partial config to lay over the files. */
export function fromEnv(env: NodeJS.ProcessEnv): Plain {
  const out: Plain = {};
  const set = (path: string, value: unknown) => {
    const parts = path.split('.');
    let node = out;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Plain;
    node[parts[parts.length - 1]] = value;
  };
  const massiveKey = env.MASSIVE_API_KEY || env.POLYGON_API_KEY;
  if (massiveKey) set('massive.api_key', massiveKey);
  if (env.MASSIVE_REST_URL) set('massive.rest_url', env.MASSIVE_REST_URL);
  if (env.APCA_API_KEY_ID) set('alpaca.api_key_id', env.APCA_API_KEY_ID);
  if (env.APCA_API_SECRET_KEY) set('alpaca.api_secret_key', env.APCA_API_SECRET_KEY);
  if (env.APCA_API_DATA_URL) set('alpaca.data_url', env.APCA_API_DATA_URL);
  if (env.IB_HOST) set('ibkr.host', env.IB_HOST);
  if (env.IB_PORT) set('ibkr.port', intFromEnv('IB_PORT', env.IB_PORT, 'ibkr.port'));
  if (env.IB_CLIENT_ID) set('ibkr.client_id', intFromEnv('IB_CLIENT_ID', env.IB_CLIENT_ID, 'ibkr.client_id'));
  if (env.BARKEEP_HOST) set('server.host', env.BARKEEP_HOST);
  if (env.BARKEEP_PORT) set('server.port', intFromEnv('BARKEEP_PORT', env.BARKEEP_PORT, 'server.port'));
  if (env.BARKEEP_DATA_DIR) set('data_dir', env.BARKEEP_DATA_DIR);
  if (env.BARKEEP_NATS_URL) set('cluster.nats_url', env.BARKEEP_NATS_URL);
  if (env.BARKEEP_API_TOKEN) set('server.api_token', env.BARKEEP_API_TOKEN);
  if (env.BARKEEP_FAULTS !== undefined && env.BARKEEP_FAULTS !== '') {
    set('runtime.faults', env.BARKEEP_FAULTS === '1' || env.BARKEEP_FAULTS === 'true');
  }
  return out;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Replaces config/default.yaml (tests). */
  defaultsPath?: string;
  /** Laid over everything else, before validation (tests and the CLI). */
  overrides?: Plain;
}

/** One source of settings, in the order they are laid over each other. */
export interface ConfigLayer {
  kind: 'default' | 'file' | 'environment' | 'override';
  /** What `config show` prints as the source: `default`, `file config/local.yaml`, `environment`. */
  label: string;
  doc: Plain;
}

export function configLayers(opts: LoadOptions = {}): ConfigLayer[] {
  const env = opts.env ?? process.env;
  const defaultsPath = opts.defaultsPath ?? DEFAULT_CONFIG_PATH;
  const layers: ConfigLayer[] = [{ kind: 'default', label: 'default', doc: foldPolygonAlias(readYaml(defaultsPath, 'default config')) }];
  const file = configFilePath(env, defaultsPath);
  if (file) {
    const what = env.BARKEEP_CONFIG ? 'BARKEEP_CONFIG file' : 'config file';
    layers.push({ kind: 'file', label: `file ${file}`, doc: resetParamsOnStrategyChange(foldPolygonAlias(readYaml(file, what))) });
  }
  layers.push({ kind: 'environment', label: 'environment', doc: fromEnv(env) });
  if (opts.overrides) layers.push({ kind: 'override', label: 'override', doc: resetParamsOnStrategyChange(foldPolygonAlias(opts.overrides)) });
  return layers;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  return loadConfigFrom(configLayers(opts));
}

export function loadConfigFrom(layers: ConfigLayer[]): Config {
  let doc: Plain = {};
  for (const layer of layers) {
    // A bad value in a file is reported even when the environment overrides it.
    if (layer.kind === 'environment') checkFileValues(doc);
    doc = overlay(doc, layer.doc);
  }
  const parsed = configSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    let key = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      const name = issue.keys[0];
      key = key ? `${key}.${name}` : name;
      message = 'unknown key';
    }
    throw new ConfigError(key, message);
  }
  const config = parsed.data;
  checkCrossField(config);
  checkConfigValues(config);
  return config;
}

function checkCrossField(config: Config): void {
  const s = config.supervisor;
  if (s.backoff_max_ms < s.backoff_initial_ms) {
    throw new ConfigError('supervisor.backoff_max_ms', 'must be at least supervisor.backoff_initial_ms');
  }
  if (Boolean(config.alpaca.api_key_id) !== Boolean(config.alpaca.api_secret_key)) {
    throw new ConfigError(config.alpaca.api_key_id ? 'alpaca.api_secret_key' : 'alpaca.api_key_id', 'Alpaca needs both APCA_API_KEY_ID and APCA_API_SECRET_KEY');
  }
  if (!isLoopback(config.server.host) && !config.server.api_token) {
    throw new ConfigError('server.api_token', `binding to non-loopback address ${config.server.host} needs BARKEEP_API_TOKEN (or server.api_token)`);
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The config with every secret replaced, for logs and status. */
export function redactConfig(config: Config): Config {
  const mask = (v: string | null) => (v ? '[redacted]' : null);
  return {
    ...config,
    server: { ...config.server, api_token: mask(config.server.api_token) },
    massive: { ...config.massive, api_key: mask(config.massive.api_key) },
    alpaca: {
      ...config.alpaca,
      api_key_id: mask(config.alpaca.api_key_id),
      api_secret_key: mask(config.alpaca.api_secret_key),
    },
  };
}
