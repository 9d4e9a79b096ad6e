/**
 * The stream clients the collector opens, from its config: Massive's `AM.*` stream when
 * `massive.websocket` is on, Alpaca's bar stream when `alpaca.websocket` is on (its default: the free
 * IEX feed streams bars). The URLs follow the REST URLs the way `barkeep check` derives them, so a
 * fake vendor on one port serves both.
 */
import type { Clock } from '../../market/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import { AlpacaStream, alpacaStreamUrl, type AlpacaStreamFeed } from '../../sources/alpaca/stream.ts';
import type { BarStream } from '../../sources/massive/bar-stream.ts';
import { MASSIVE_DEFAULT_WS_URL, MassiveStream, massiveStreamUrl } from '../../sources/massive/stream.ts';
import type { SourceName } from '../../sources/types.ts';
import type { CollectorConfig } from './protocol.ts';

const ALPACA_DEFAULT_WS_BASE = 'wss://stream.data.alpaca.markets/v2';

export function buildStreams(cfg: CollectorConfig, clock: Clock, log: Logger): Partial<Record<SourceName, () => BarStream>> {
  const out: Partial<Record<SourceName, () => BarStream>> = {};
  const m = cfg.massive;
  if (m?.websocket) {
    const url = m.wsUrl === MASSIVE_DEFAULT_WS_URL ? massiveStreamUrl(m.restUrl) : m.wsUrl;
    out.massive = () => new MassiveStream({ apiKey: m.apiKey, url, clock, logger: log });
  }
  const a = cfg.alpaca;
  if (a?.websocket) {
    const feed: AlpacaStreamFeed = a.feed === 'sip' || a.feed === 'delayed_sip' ? a.feed : 'iex';
    const url = a.wsUrl === ALPACA_DEFAULT_WS_BASE ? alpacaStreamUrl(a.dataUrl, feed) : alpacaStreamUrl(a.wsUrl, feed);
    out.alpaca = () => new AlpacaStream({ keyId: a.keyId, secretKey: a.secretKey, feed, url, clock, logger: log });
  }
  return out;
}
