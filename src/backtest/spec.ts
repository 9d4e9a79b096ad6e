/**
 * A backtest's inputs as one plain, cloneable object (what crosses to a pool worker and what
 * POST /backtests takes), its defaults from the configuration, and its checks.
 */
import { z } from 'zod';
import { exitsFromSnake, exitsToSnake } from '../actors/trader/order-types.ts';
import type { ExitsBody, TraderConfig } from '../actors/trader/protocol.ts';
import { riskConfigSchema, type RiskConfigInput } from '../actors/trader/risk.ts';
import { type Config, exitsSchema } from '../config/schema.ts';
import { isValidSymbol } from '../market/bar.ts';
import { BAR_SIZES, type BarSize } from '../market/bar-size.ts';
import { BarkeepError } from '../errors.ts';

export interface BacktestSpec {
  symbols: string[];
  bar_size: BarSize;
  /** First bar start, UTC epoch ms (inclusive). */
  from: number;
  /** End of the span, UTC epoch ms (exclusive). */
  to: number;
  /** A built-in strategy name, or a label for `strategy_module`. */
  strategy: string;
  /** Path to a module whose default export is (params) => Strategy. */
  strategy_module: string | null;
  params: Record<string, unknown>;
  cash: number;
  slippage_bps: number;
  commission_per_share: number;
  min_commission: number;
  /** Risk limits, as the trader's RiskEngine takes them. */
  risk: RiskConfigInput;
  /** Bars before `from` given to the strategy's warmUp per symbol (the live preload); 0 for none. */
  warmup_bars: number;
  /** Protective exits on every entry, as trader.exits live (percent of the entry price); null: none. Default null. */
  exits?: ExitsBody | null;
  /**
   * What ends `day` orders: 'nyse' (the session close by the NYSE calendar, early closes included,
   * as live on a real market) or 'none' (the 24/7 simulated market). Default 'nyse'.
   */
  calendar?: 'nyse' | 'none';
}

/** Where bars are read: each pool worker opens this LMDB environment itself. */
export interface BarSourceSpec {
  dataDir: string;
  sourcePrecedence: string[];
}

const symbol = z.string().refine(isValidSymbol, 'not a ticker symbol (e.g. QQQ, BRK.B)');
const MAX_SPAN_MS = 30 * 366 * 86_400_000;

export const specSchema = z
  .object({
    symbols: z.array(symbol).min(1, 'needs at least one symbol').max(100, 'at most 100 symbols'),
    bar_size: z.enum(BAR_SIZES),
    from: z.number().int().min(0),
    to: z.number().int().min(0),
    strategy: z.string().min(1),
    strategy_module: z.string().min(1).nullable(),
    params: z.record(z.string(), z.unknown()),
    cash: z.number().positive().finite(),
    slippage_bps: z.number().min(0).max(10_000),
    commission_per_share: z.number().min(0).finite(),
    min_commission: z.number().min(0).finite(),
    risk: riskConfigSchema,
    warmup_bars: z.number().int().min(0).max(100_000),
    exits: exitsSchema.nullable().optional(),
    calendar: z.enum(['nyse', 'none']).optional(),
  })
  .strict()
  .refine((s) => s.from < s.to, { path: ['from'], message: 'must be before to' })
  .refine((s) => s.to - s.from <= MAX_SPAN_MS, { path: ['to'], message: 'the span is longer than 30 years' });

export class SpecError extends BarkeepError<'BACKTEST_INPUT'> {
  declare readonly field: string;
  constructor(field: string, message: string) {
    super('BACKTEST_INPUT', message, { field });
  }
}

/** Checks a spec; throws SpecError naming the first bad field. */
export function checkSpec(spec: unknown): BacktestSpec {
  const parsed = specSchema.safeParse(spec);
  if (parsed.success) {
    const given = spec as BacktestSpec;
    const exits = exitsToSnake(exitsFromSnake(given.exits));
    return { ...given, symbols: [...new Set(given.symbols)], exits, calendar: given.calendar ?? 'nyse' };
  }
  const issue = parsed.error.issues[0];
  const field = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]].join('.') : issue.path.join('.') || 'spec';
  throw new SpecError(field, `${field}: ${issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message}`);
}

/**
 * The defaults a backtest takes from the configuration: the trader section (strategy) and the
 * trader actor's settings derived from it (paper broker, risk), so they are the ones live uses.
 */
export function defaultsFrom(section: Config['trader'], trader: TraderConfig): Omit<BacktestSpec, 'symbols' | 'from' | 'to'> {
  return {
    bar_size: section.bar_size,
    strategy: section.strategy,
    strategy_module: section.strategy_module,
    params: section.strategy_params,
    cash: trader.paper.startingCash,
    slippage_bps: trader.paper.slippageBps,
    commission_per_share: trader.paper.commissionPerShare,
    min_commission: trader.paper.minCommission,
    // The same rule as the live trader: on the 24/7 simulated market, every hour is a session.
    risk: { ...trader.risk, allowedSessions: trader.alwaysOpen ? ['always'] : trader.risk.allowedSessions },
    warmup_bars: 0,
    exits: trader.exits ?? null,
    calendar: trader.alwaysOpen ? 'none' : 'nyse',
  };
}
