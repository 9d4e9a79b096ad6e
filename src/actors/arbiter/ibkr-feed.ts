/**
 * Wires the IBKR data feed (src/sources/ibkr) into the arbiter: real-time bars, refusals (420, 354,
 * 10168), stalls and the connection's state become ladder events; historical requests serve the
 * warm-up and the polling rung. Loaded only when `ibkr.enabled` is on.
 *
 * `wireIbkrFeed` is the wiring alone, for any feed, clock and logger (the actor's, or a test's on
 * the TWS simulator's clock); `connectIbkrFeed` builds the actor's feed from its config.
 *
 * A real-time bar is passed on only if its symbol's stream ran unbroken over the bar's whole
 * interval. A bar that began before the stream last (re)started (the subscription, a refusal, a
 * stall, a recovery, any change of the connection's state, link-lost included) may lack 5-second
 * bars: the adapter completes it by its grace timer, possibly long after the stream died. Passed
 * on, it would be written over the collector's complete bar (ibkr-realtime outranks alpaca and sim)
 * and count as a fresh bar of a rung that is down, so a refused or silent subscription would look
 * half recovered. It is dropped: the real-time rung is down at every such break, so the cache
 * serves that minute with the collector's bar, and the climb back waits for whole bars.
 *
 * Footgun: the feed starts in `bind`, after its listeners are attached, so the arbiter hears every
 * connection state from the first one on.
 */
import { MarketCalendar } from '../../market/calendar.ts';
import type { Clock } from '../../market/clock.ts';
import type { ActorContext } from '../../runtime/actor.ts';
import type { Logger } from '../../runtime/log.ts';
import { IbkrDataFeed } from '../../sources/ibkr/data-feed.ts';
import type { Arbiter, IbkrFeedPort } from './arbiter.ts';
import { ArbiterError, type ArbiterConfig } from './protocol.ts';

export interface IbkrFeedWiring {
  port: IbkrFeedPort;
  /** Sends the feed's events to `arbiter` and starts the feed. Once per wiring. */
  bind(arbiter: Arbiter): void;
  close(): Promise<void>;
}

export interface ConnectIbkrFeedOptions {
  /**
   * When silence is a stall. Default: the NYSE calendar's sessions (pre, regular, post), because
   * real TWS sends nothing while the market is closed.
   */
  isMarketOpen?: (ts: number) => boolean;
}

/** Wires `feed` (not yet started, or started) to an arbiter, on `clock`, logging to `log`. */
export function wireIbkrFeed(feed: IbkrDataFeed, clock: Clock, log: Logger): IbkrFeedWiring {
  /** Per symbol: since when its stream has run unbroken (see the header). */
  const unbrokenSince = new Map<string, number>();
  let connectionSince = -Infinity;
  const port: IbkrFeedPort = {
    subscribeRealtime: (symbol, barSize) => {
      feed.subscribeRealtime(symbol, barSize);
      unbrokenSince.set(symbol, clock.now());
    },
    unsubscribe: (symbol) => {
      feed.unsubscribe(symbol);
      unbrokenSince.delete(symbol);
    },
    fetchHistorical: (symbol, barSize, from, to) => feed.fetchHistorical(symbol, barSize, from, to),
    connected: () => feed.connection.state === 'connected',
  };
  const broken = (symbol: string) => unbrokenSince.set(symbol, clock.now());
  let bound = false;
  return {
    port,
    bind(arbiter) {
      if (bound) throw new ArbiterError('IBKR_ALREADY_BOUND', 'this IBKR feed is already bound to an arbiter');
      bound = true;
      feed.on('bar', (bar) => {
        const since = Math.max(unbrokenSince.get(bar.symbol) ?? -Infinity, connectionSince);
        if (bar.start <= since) {
          log.info({ symbol: bar.symbol, start: new Date(bar.start).toISOString() }, 'an IBKR bar whose stream broke while it was built was dropped; the cached bar stands');
          return;
        }
        arbiter.onRealtimeBar(bar).catch((err) => log.warn({ symbol: bar.symbol, err }, 'an IBKR bar could not be written'));
      });
      feed.on('unavailable', (symbol, code, message) => {
        broken(symbol);
        log.warn({ symbol, code, message }, 'IBKR real-time bars unavailable');
        arbiter.onRealtimeDown(symbol, `IBKR error ${code}: ${message}`);
      });
      feed.on('stall', (symbol, since) => {
        broken(symbol);
        const silentS = Math.round((clock.now() - since) / 1000);
        log.warn({ symbol, silent_s: silentS }, 'IBKR real-time subscription stalled');
        arbiter.onRealtimeDown(symbol, `stalled: no 5-second bars for ${silentS} s`, true);
      });
      feed.on('recovered', (symbol) => {
        broken(symbol);
        log.info({ symbol }, 'IBKR real-time bars flowing again');
      });
      feed.on('connection', (state) => {
        connectionSince = clock.now();
        arbiter.onIbkrConnection(state);
      });
      feed.on('ibError', (code) => arbiter.onIbkrError(code));
      // A feed started before bind already left 'idle': tell the arbiter where it stands.
      const state = feed.connection.state;
      if (state !== 'idle') {
        connectionSince = clock.now();
        arbiter.onIbkrConnection(state);
      }
      feed.start();
    },
    close: () => feed.close(),
  };
}

export async function connectIbkrFeed(cfg: ArbiterConfig, ctx: ActorContext<ArbiterConfig>, opts: ConnectIbkrFeedOptions = {}): Promise<IbkrFeedWiring> {
  const ib = cfg.ibkr!;
  let isMarketOpen = opts.isMarketOpen;
  if (!isMarketOpen) {
    const calendar = new MarketCalendar();
    isMarketOpen = (ts) => calendar.sessionAt(ts) !== 'closed';
  }
  const feed = IbkrDataFeed.create({ host: ib.host, port: ib.port, clientId: ib.clientId }, ctx.clock, {
    stallIntervals: cfg.stallIntervals,
    graceMs: cfg.realtimeGraceMs,
    isMarketOpen,
    connectionOptions: { backoff: { initialMs: ib.reconnectInitialMs, maxMs: ib.reconnectMaxMs } },
  });
  return wireIbkrFeed(feed, ctx.clock, ctx.log);
}
