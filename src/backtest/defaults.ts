/** A backtest's settings from the configuration: the trader's strategy, paper broker and risk, as live uses them. */
import type { Config } from '../config/schema.ts';
import { actorConfigs } from '../server/engine.ts';
import type { BacktestSpec } from './spec.ts';

/** The configuration's trader, paper broker and risk settings, as live uses them. */
export function specDefaults(config: Config): Omit<BacktestSpec, 'symbols' | 'from' | 'to'> {
  const trader = actorConfigs(config).trader;
  return {
    bar_size: config.trader.bar_size,
    strategy: config.trader.strategy,
    strategy_module: config.trader.strategy_module,
    params: config.trader.strategy_params,
    cash: trader.paper.startingCash,
    slippage_bps: trader.paper.slippageBps,
    commission_per_share: trader.paper.commissionPerShare,
    min_commission: trader.paper.minCommission,
    // The same rule as the live trader: on the 24/7 simulated market, every hour is a session.
    risk: { ...trader.risk, allowedSessions: trader.alwaysOpen ? ['always'] : trader.risk.allowedSessions },
    warmup_bars: 0,
  };
}

