/**
 * The strategy contract ("agents"): given warm-up history and then each new bar, a strategy returns signals,
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
import type { Bar } from '../../../market/bar.ts';
import type { OrderTicket } from '../../../storage/types.ts';
import { type ExitSettings, exitsProblem, orderSpecProblem } from '../order-types.ts';

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
  /** Protective exits for the order this target leads to when it opens or adds to a position (overrides the configured exits; null: none). */
  exits?: ExitSettings | null;
}

export interface OrderSignal extends OrderTicket {
  kind: 'order';
  /** Protective exits when this order opens or adds to a position (overrides the configured exits; null: none). */
  exits?: ExitSettings | null;
  reason: string;
}

export type Signal = TargetSignal | OrderSignal;

/**
 * A target signal whose reason is put into words only when it is read (status, a log line kept,
 * the journal once it leads to an order): a strategy that states its target on every bar, as the
 * built-ins do, need not build a string per bar. Subclasses say why in `explain()`.
 */
export abstract class ExplainedTarget implements TargetSignal {
  readonly kind = 'target' as const;
  constructor(
    readonly symbol: string,
    readonly targetQty: number,
  ) {}
  protected abstract explain(): string;
  get reason(): string {
    return this.explain();
  }
  toJSON(): TargetSignal {
    return { kind: this.kind, symbol: this.symbol, targetQty: this.targetQty, reason: this.reason };
  }
}

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

/** Why a signal cannot be traded, or undefined when it is well formed. */
export function signalProblem(signal: unknown): string | undefined {
  if (typeof signal !== 'object' || signal === null) return 'a signal must be an object';
  const s = signal as Record<string, unknown>;
  if (typeof s.symbol !== 'string' || s.symbol.length === 0) return 'signal.symbol must be a non-empty string';
  if (!(signal instanceof ExplainedTarget) && typeof s.reason !== 'string') return 'signal.reason must be a string';
  if (s.kind === 'target') {
    if (!Number.isSafeInteger(s.targetQty)) return `signal.targetQty must be a whole number of shares, got ${String(s.targetQty)}`;
  } else if (s.kind === 'order') {
    if (s.side !== 'buy' && s.side !== 'sell') return `signal.side must be "buy" or "sell", got ${String(s.side)}`;
    if (!Number.isSafeInteger(s.qty) || (s.qty as number) <= 0) return `signal.qty must be a positive whole number of shares, got ${String(s.qty)}`;
    const p = orderSpecProblem(s, 'signal.');
    if (p) return `${p.field}: ${p.message}`;
  } else {
    return `signal.kind must be "target" or "order", got ${String(s.kind)}`;
  }
  const e = exitsProblem(s.exits, 'signal.exits.');
  return e ? `${e.field}: ${e.message}` : undefined;
}
