/**
 * Where each setting came from: the defaults, the config file, the environment, or (for the
 * collector's and the trader's session) the running session. The start-up log, `GET /config` and
 * `barkeep config show` print them. Values are always shown redacted.
 */
import { redactConfig, type ConfigLayer } from './load.ts';
import type { Config } from './schema.ts';

/** The environment variables behind each setting (see fromEnv in load.ts). */
const ENV_NAMES: Record<string, string> = {
  'massive.api_key': 'MASSIVE_API_KEY',
  'massive.rest_url': 'MASSIVE_REST_URL',
  'alpaca.api_key_id': 'APCA_API_KEY_ID',
  'alpaca.api_secret_key': 'APCA_API_SECRET_KEY',
  'alpaca.data_url': 'APCA_API_DATA_URL',
  'ibkr.host': 'IB_HOST',
  'ibkr.port': 'IB_PORT',
  'ibkr.client_id': 'IB_CLIENT_ID',
  'server.host': 'BARKEEP_HOST',
  'server.port': 'BARKEEP_PORT',
  'server.api_token': 'BARKEEP_API_TOKEN',
  data_dir: 'BARKEEP_DATA_DIR',
  'runtime.faults': 'BARKEEP_FAULTS',
};

/** Settings shown as one value, not key by key. */
const WHOLE = new Set(['trader.strategy_params']);

export interface Setting {
  key: string;
  value: unknown;
  /** `default`, `file <path>`, `environment <VAR>`, `override`, `resumed (saved session)`, `POST /live/start`. */
  source: string;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function has(doc: Plain, key: string): boolean {
  let node: unknown = doc;
  for (const part of key.split('.')) {
    if (!isPlain(node) || !Object.hasOwn(node, part)) return false;
    node = node[part];
  }
  return true;
}

export function sourceOf(key: string, layers: readonly ConfigLayer[]): string {
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i];
    if (!has(layer.doc, key)) continue;
    if (layer.kind === 'environment' && ENV_NAMES[key]) return `environment ${ENV_NAMES[key]}`;
    return layer.label;
  }
  return 'default';
}

/** Every effective setting (secrets redacted) with its source, in the config's order. */
export function settingsWithSources(config: Config, layers: readonly ConfigLayer[]): Setting[] {
  const out: Setting[] = [];
  const walk = (node: unknown, path: string) => {
    if (isPlain(node) && !WHOLE.has(path)) {
      for (const [k, v] of Object.entries(node)) walk(v, path ? `${path}.${k}` : k);
      return;
    }
    out.push({ key: path, value: node, source: sourceOf(path, layers) });
  };
  walk(redactConfig(config), '');
  return out;
}

/** `key = value  (source)` lines, aligned. */
export function formatSettings(settings: readonly Setting[]): string {
  const rows = settings.map((s) => [s.key, JSON.stringify(s.value) ?? 'null', s.source]);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.min(48, Math.max(...rows.map((r) => r[1].length)));
  return rows.map(([k, v, src]) => `${k.padEnd(w0)}  ${v.padEnd(w1)}  (${src})`).join('\n');
}

/** Settings that are set but do nothing, worth a warning at start. */
export function configWarnings(config: Config, env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  if (!config.ibkr.enabled) {
    const set = ['IB_HOST', 'IB_PORT', 'IB_CLIENT_ID'].filter((n) => env[n]);
    if (set.length > 0) warnings.push(`${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} set but ibkr.enabled is false: IBKR is not used`);
  }
  return warnings;
}
