/**
 * Wires the IBKR data feed (src/sources/ibkr) into the arbiter: real-time bars, refusals (420, 354,
 * 10168), stalls and the connection's state become ladder events; historical requests serve the
 * warm-up and the polling rung. Loaded only when `ibkr.enabled` is on.
 */
import { MarketCalendar } from '../../market/calendar.ts';
import type { ActorContext } from '../../runtime/actor.ts';
import { IbkrDataFeed } from '../../sources/ibkr/data-feed.ts';
import type { Arbiter, IbkrFeedPort } from './arbiter.ts';
import type { ArbiterConfig } from './protocol.ts';

export interface IbkrFeedWiring {
  port: IbkrFeedPort;
  bind(arbiter: Arbiter): void;
  close(): Promise<void>;
}

export async function connectIbkrFeed(cfg: ArbiterConfig, ctx: ActorContext<ArbiterConfig>): Promise<IbkrFeedWiring> {
  const ib = cfg.ibkr!;
  const calendar = new MarketCalendar();
  const feed = IbkrDataFeed.create({ host: ib.host, port: ib.port, clientId: ib.clientId }, ctx.clock, {
    stallIntervals: cfg.stallIntervals,
    graceMs: cfg.realtimeGraceMs,
    // Real TWS sends nothing while the market is closed: silence then is not a stall.
    isMarketOpen: (ts) => calendar.sessionAt(ts) !== 'closed',
  });
  feed.start();
  const port: IbkrFeedPort = {
    subscribeRealtime: (symbol, barSize) => feed.subscribeRealtime(symbol, barSize),
    unsubscribe: (symbol) => feed.unsubscribe(symbol),
    fetchHistorical: (symbol, barSize, from, to) => feed.fetchHistorical(symbol, barSize, from, to),
    connected: () => feed.connection.state === 'connected',
  };
  return {
    port,
    bind(arbiter) {
      feed.on('bar', (bar) => {
        arbiter.onRealtimeBar(bar).catch((err) => ctx.log.warn({ symbol: bar.symbol, err }, 'an IBKR bar could not be written'));
      });
      feed.on('unavailable', (symbol, code, message) => {
        ctx.log.warn({ symbol, code, message }, 'IBKR real-time bars unavailable');
        arbiter.onRealtimeDown(symbol, `IBKR error ${code}: ${message}`);
      });
      feed.on('stall', (symbol, since) => {
        const silentS = Math.round((ctx.clock.now() - since) / 1000);
        ctx.log.warn({ symbol, silent_s: silentS }, 'IBKR real-time subscription stalled');
        arbiter.onRealtimeDown(symbol, `stalled: no 5-second bars for ${silentS} s`, true);
      });
      feed.on('recovered', (symbol) => ctx.log.info({ symbol }, 'IBKR real-time bars flowing again'));
      feed.on('connection', (state) => arbiter.onIbkrConnection(state));
      feed.on('ibError', (code) => arbiter.onIbkrError(code));
    },
    close: () => feed.close(),
  };
}
