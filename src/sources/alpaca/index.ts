/** Alpaca Market Data v2: REST bars and the stock stream. */
export { AlpacaSource, ALPACA_DEFAULT_DATA_URL, type AlpacaSourceOptions, type AlpacaRateLimitState } from './source.ts';
export { AlpacaStream, alpacaStreamUrl, type AlpacaStreamOptions, type AlpacaStreamFeed } from './stream.ts';
export { ALPACA_FEEDS, type AlpacaFeed } from './wire.ts';
