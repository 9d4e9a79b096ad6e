/**
 * Checks made when `barkeep serve` has read its config and before any actor starts, each refusing
 * the start with one `config: <key>: ...` line:
 *
 * - the autostarted strategy is built once here, so a bad param (`fats: 3`, `fast > slow`) or a
 *   module that does not load is refused before the collector runs, naming the param;
 * - the IBKR live-trading ports (TWS 7496, IB Gateway 4001) need `ibkr.live: true`: real money is
 *   never traded by a port number typed by mistake;
 * - the loop's bar size is the collected one or can be built from it (a multiple, or 1Day).
 */
import { createStrategy } from '../actors/trader/strategies/registry.ts';
import { probeIbkrAccounts } from '../sources/ibkr/account-probe.ts';
import { canRollUp } from '../market/aggregate.ts';
import { ConfigError } from './load.ts';
import type { Config } from './schema.ts';

export const IBKR_LIVE_PORTS: ReadonlyMap<number, string> = new Map([
  [7496, 'TWS live trading'],
  [4001, 'IB Gateway live trading'],
]);

/**
 * On a live-trading port, says which account barkeep would trade: TWS names it (managedAccounts)
 * right after the handshake, so the guard connects just long enough to read it (no request, no
 * order) whether it then refuses or allows the start. When TWS cannot be reached the message says
 * so and why, instead of an account.
 */
export async function checkIbkrLive(config: Config, probe: typeof probeIbkrAccounts = probeIbkrAccounts): Promise<string | null> {
  const i = config.ibkr;
  if (!i.enabled) return null;
  const what = IBKR_LIVE_PORTS.get(i.port);
  if (!what) return null;
  const p = await probe({ host: i.host, port: i.port, clientId: i.client_id });
  const account = p.accounts ? `account ${p.accounts.join(', ')}` : `account unknown: ${p.reason}`;
  if (!i.live) {
    throw new ConfigError('ibkr.live', `ibkr.port ${i.port} is ${what} (real money, ${account}); set ibkr.live: true to trade on it, or use the paper port (7497 TWS, 4002 Gateway)`);
  }
  return `IBKR LIVE: port ${i.port} is ${what}; orders through broker: ibkr trade real money in ${account}`;
}

/**
 * The autostarted loop's bar size must be the collected one or built from it (the collector's
 * rollup); otherwise it would wait for bars that never come. Without autostart, POST /live/start
 * answers the same with a 409.
 */
export function checkBarSizes(config: Config): void {
  if (!config.trader.autostart) return;
  const traded = config.trader.bar_size;
  const collected = config.collector.bar_size;
  if (traded === collected || canRollUp(collected, traded)) return;
  throw new ConfigError(
    'trader.bar_size',
    `${traded} bars cannot be built from the ${collected} bars the collector collects (collector.bar_size); trade ${collected} or a multiple of it, or collect ${traded}`,
  );
}

export async function checkStrategy(config: Config): Promise<void> {
  const t = config.trader;
  if (!t.autostart) return;
  const module = t.strategy_module ?? undefined;
  try {
    await createStrategy({ name: t.strategy, params: t.strategy_params, ...(module ? { module } : {}) });
  } catch (err) {
    const e = err as Error & { code?: string; field?: string };
    const key = e.code === 'STRATEGY_PARAMS' ? `trader.${e.field ?? 'strategy_params'}` : e.code === 'STRATEGY_MODULE' ? 'trader.strategy_module' : 'trader.strategy';
    throw new ConfigError(key, e.message.split('\n')[0]);
  }
}
