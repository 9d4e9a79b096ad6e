/** A backtest's settings from the configuration: the trader's strategy, paper broker and risk, as live uses them. */
import type { Config } from '../config/schema.ts';
import { actorConfigs } from '../config/actor-configs.ts';
import { defaultsFrom, type BacktestSpec } from './spec.ts';

export function specDefaults(config: Config): Omit<BacktestSpec, 'symbols' | 'from' | 'to'> {
  return defaultsFrom(config.trader, actorConfigs(config).trader);
}
