export { startTwsSimulator, TwsSimulator, ERROR_TEXT, MAX_SERVER_VERSION } from './server.ts';
export type { TwsSimulatorOptions, PlacedOrder, RequestRecord, HistoricalDateStyle } from './server.ts';
export { AcceleratedClock } from './sim-clock.ts';
export { PricePath } from './price-path.ts';
export type { SimFiveSecondBar, SimBar } from './price-path.ts';
export type { SimOrder, SimExecution } from './messages.ts';
export { watchDecodingErrors } from './decoding-guard.ts';
