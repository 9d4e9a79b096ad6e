/** Massive (ex-Polygon): REST bars and the minute-aggregate stream. */
export { MassiveSource, MASSIVE_DEFAULT_REST_URL, type MassiveSourceOptions } from './source.ts';
export { MassiveStream, massiveStreamUrl, MASSIVE_DEFAULT_WS_URL, type MassiveStreamOptions } from './stream.ts';
export { BarStream, type BarStreamOptions, type StreamState, type StreamStatus } from './bar-stream.ts';
