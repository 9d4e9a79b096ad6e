/**
 * Strategies ("agents"): given warm-up history and then each new bar, a strategy returns signals,
 * either a target position or an order intent, each with a reason that is journaled with the order.
 *
 * Contract for implementers:
 * - `onBar` is called once per bar per symbol, in bar order, and must be synchronous and quick: it
 *   sits on the bar-to-order path. Keep per-symbol state small (see strategies/rolling-window.ts).
 * - A strategy that throws (in warmUp or onBar), or returns a malformed signal, is isolated by the
 *   trading loop: logged, counted, and that symbol is paused; other symbols keep trading.
 * - A target signal is idempotent (the order manager trades only the difference from the position
 *   plus open orders), so emitting the same target on every bar is safe and is how a refused order
 *   gets retried.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import type { Bar } from '../../market/bar.ts';
import type { OrderSide, OrderType } from '../../storage/types.ts';
import { MeanReversion } from './strategies/mean-reversion.ts';
import { SmaCrossover } from './strategies/sma-crossover.ts';
import { StrategyError } from './strategies/strategy-error.ts';

export { StrategyError };
export type { StrategyErrorCode } from './strategies/strategy-error.ts';

export interface StrategyContext {
  /** Current filled position in the bar's symbol, signed shares. */
  position: number;
  /** Broker cash when the broker reports it (paper), NaN otherwise. */
  cash: number;
  /** Clock time, UTC epoch ms. */
  now: number;
}

export interface TargetSignal {
  kind: 'target';
  symbol: string;
  /** Desired signed position in shares (negative is short). */
  targetQty: number;
  reason: string;
}

export interface OrderSignal {
  kind: 'order';
  symbol: string;
  side: OrderSide;
  qty: number;
  type: OrderType;
  limitPrice?: number;
  reason: string;
}

export type Signal = TargetSignal | OrderSignal;

export interface Strategy {
  readonly name: string;
  warmUp(symbol: string, bars: readonly Bar[]): void;
  onBar(symbol: string, bar: Bar, ctx: StrategyContext): Signal[] | Signal | undefined;
}

/** What a user's module exports by default. */
export type StrategyFactory = (params: Record<string, unknown>) => Strategy;

export interface StrategySpec {
  /** A built-in name, or a label for a module strategy. */
  name: string;
  params?: Record<string, unknown>;
  /** Path to a module (absolute, or relative to the working directory) whose default export is a StrategyFactory. */
  module?: string;
}

const BUILT_INS: Record<string, StrategyFactory> = {
  'sma-crossover': (params) => new SmaCrossover(params),
  'mean-reversion': (params) => new MeanReversion(params),
};

export const BUILT_IN_STRATEGIES = Object.keys(BUILT_INS);

export async function createStrategy(spec: StrategySpec): Promise<Strategy> {
  if (spec.module) return loadModuleStrategy(spec);
  const factory = BUILT_INS[spec.name];
  if (!factory) {
    throw new StrategyError(
      'STRATEGY_UNKNOWN',
      `strategy "${spec.name}" is not built in (built in: ${BUILT_IN_STRATEGIES.join(', ')}); give a module path for your own`,
    );
  }
  return factory(spec.params ?? {});
}

async function loadModuleStrategy(spec: StrategySpec): Promise<Strategy> {
  const path = isAbsolute(spec.module!) ? spec.module! : resolve(process.cwd(), spec.module!);
  let mod: { default?: unknown };
  try {
    // A .ts module anywhere (outside this repository too, with no package.json saying "module") is
    // loaded through tsx's own loader; plain import() of it fails in a worker thread.
    mod = /\.[cm]?ts$/.test(path) ? await tsImport(pathToFileURL(path).href, import.meta.url) : await import(pathToFileURL(path).href);
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

/** Why a signal cannot be traded, or undefined when it is well formed. */
export function signalProblem(signal: unknown): string | undefined {
  if (typeof signal !== 'object' || signal === null) return 'a signal must be an object';
  const s = signal as Record<string, unknown>;
  if (typeof s.symbol !== 'string' || s.symbol.length === 0) return 'signal.symbol must be a non-empty string';
  if (typeof s.reason !== 'string') return 'signal.reason must be a string';
  if (s.kind === 'target') {
    if (!Number.isSafeInteger(s.targetQty)) return `signal.targetQty must be a whole number of shares, got ${String(s.targetQty)}`;
    return undefined;
  }
  if (s.kind === 'order') {
    if (s.side !== 'buy' && s.side !== 'sell') return `signal.side must be "buy" or "sell", got ${String(s.side)}`;
    if (!Number.isSafeInteger(s.qty) || (s.qty as number) <= 0) return `signal.qty must be a positive whole number of shares, got ${String(s.qty)}`;
    if (s.type === 'limit') {
      if (typeof s.limitPrice !== 'number' || !(s.limitPrice > 0) || !Number.isFinite(s.limitPrice)) {
        return `signal.limitPrice must be a positive price for a limit order, got ${String(s.limitPrice)}`;
      }
    } else if (s.type !== 'market') {
      return `signal.type must be "market" or "limit", got ${String(s.type)}`;
    }
    return undefined;
  }
  return `signal.kind must be "target" or "order", got ${String(s.kind)}`;
}
