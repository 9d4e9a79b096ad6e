/**
 * Where strategies come from: the built-ins by name, or a user's module whose default export is a
 * StrategyFactory (see contract.ts).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Strategy, StrategyFactory, StrategySpec } from './contract.ts';
import { MeanReversion } from './mean-reversion.ts';
import { SmaCrossover } from './sma-crossover.ts';
import { StrategyError } from './strategy-error.ts';

// A Map, not an object literal: a name from input ("constructor", "toString", "__proto__") must
// never find something on a prototype.
const BUILT_INS = new Map<string, StrategyFactory>([
  ['sma-crossover', (params) => new SmaCrossover(params)],
  ['mean-reversion', (params) => new MeanReversion(params)],
]);

export const BUILT_IN_STRATEGIES = [...BUILT_INS.keys()];

export async function createStrategy(spec: StrategySpec): Promise<Strategy> {
  if (spec.module) return loadModuleStrategy(spec);
  const factory = BUILT_INS.get(spec.name);
  if (!factory) {
    throw new StrategyError('STRATEGY_UNKNOWN', `strategy "${spec.name}" is not built in (built in: ${BUILT_IN_STRATEGIES.join(', ')}); give a module path for your own`);
  }
  return factory(spec.params ?? {});
}

async function loadModuleStrategy(spec: StrategySpec): Promise<Strategy> {
  const path = isAbsolute(spec.module!) ? spec.module! : resolve(process.cwd(), spec.module!);
  let mod: { default?: unknown };
  try {
    // A .ts module anywhere (outside this repository too, with no package.json saying "module") is
    // loaded through tsx's own loader; plain import() of it fails in a worker thread.
    // tsx (and esbuild under it) is loaded only for such a module, not by every trader and server start.
    mod = /\.[cm]?ts$/.test(path) ? await (await import('tsx/esm/api')).tsImport(pathToFileURL(path).href, import.meta.url) : await import(pathToFileURL(path).href);
    // Compiled as CommonJS, the module's default export arrives one level down.
    const inner = (mod.default as { default?: unknown } | undefined)?.default;
    if (typeof mod.default !== 'function' && typeof inner === 'function') mod = { default: inner };
  } catch (err) {
    throw new StrategyError('STRATEGY_MODULE', `strategy module "${spec.module}" could not be loaded: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.default !== 'function') {
    throw new StrategyError('STRATEGY_MODULE', `strategy module "${spec.module}" must default-export a function (params) => Strategy`);
  }
  let strategy: unknown;
  try {
    strategy = (mod.default as StrategyFactory)(spec.params ?? {});
  } catch (err) {
    if (err instanceof StrategyError) throw err;
    throw new StrategyError('STRATEGY_MODULE', `strategy module "${spec.module}" failed to build its strategy: ${(err as Error).message}`, { cause: err });
  }
  const s = strategy as Partial<Strategy> | null;
  if (!s || typeof s.name !== 'string' || s.name.length === 0 || typeof s.warmUp !== 'function' || typeof s.onBar !== 'function') {
    throw new StrategyError('STRATEGY_MODULE', `strategy module "${spec.module}": its factory must return an object with a name, warmUp() and onBar()`);
  }
  return s as Strategy;
}
