/** How barkeep's symbols and bar sizes are said to TWS. */
import { SecType, BarSizeSetting, type Contract } from '@stoqey/ib';
import type { BarSize } from '../../market/bar-size.ts';

/** A US stock routed through SMART. */
export function stockContract(symbol: string): Contract {
  return { symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' };
}

export const BAR_SIZE_SETTING: Record<BarSize, BarSizeSetting> = {
  '1Min': BarSizeSetting.MINUTES_ONE,
  '5Min': BarSizeSetting.MINUTES_FIVE,
  '15Min': BarSizeSetting.MINUTES_FIFTEEN,
  '30Min': BarSizeSetting.MINUTES_THIRTY,
  '1Hour': BarSizeSetting.HOURS_ONE,
  '1Day': BarSizeSetting.DAYS_ONE,
};

const DAY_S = 86_400;

/**
 * The durationStr covering [from, to): seconds up to one day for intraday bars (IB refuses more
 * than 86400 S), then days, then years. It may cover more than asked; callers filter by start.
 */
export function durationFor(from: number, to: number, barSize: BarSize): string {
  const seconds = Math.max(1, Math.ceil((to - from) / 1000));
  if (barSize !== '1Day' && seconds <= DAY_S) return `${seconds} S`;
  const days = Math.ceil(seconds / DAY_S);
  if (days <= 365) return `${days} D`;
  return `${Math.ceil(days / 365)} Y`;
}
