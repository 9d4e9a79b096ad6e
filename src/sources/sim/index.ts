/** The simulated market: the bar source used when no vendor key is set, and its price path. */
export { SimMarket, type SimMarketOptions } from './market.ts';
export {
  SimPricePath,
  SimPathError,
  aggregatePathBars,
  SIM_FIRST_DAY,
  SIM_LAST_DAY,
  type PathBar,
  type SimSession,
  type SimPricePathOptions,
} from './price-path.ts';
