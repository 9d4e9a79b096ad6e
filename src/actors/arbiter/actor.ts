/**
 * The arbiter's thread: the feed ladder per symbol, fed by the collector's keys and by IBKR, handing
 * the trader each bar's key once, in order. See arbiter.ts for the design.
 */
import type { BarSource } from '../../market/bar.ts';
import { defineActor } from '../../runtime/actor.ts';
import { openStorage } from '../../storage/storage.ts';
import { Arbiter } from './arbiter.ts';
import { reportDelivery } from './feed-events.ts';
import { deliveryRecorder } from './delivery-recorder.ts';
import { TraderBatch } from './trader-batch.ts';
import { AfterDelivery } from './after-delivery.ts';
import type { ArbiterConfig, ArbiterRequests, ArbiterToTrader, TraderToArbiter } from './protocol.ts';
import type { CollectorToArbiter } from '../collector/protocol.ts';

export default defineActor<ArbiterRequests, ArbiterConfig>({
  async start(ctx) {
    const cfg = ctx.config;
    const storage = openStorage({ path: cfg.dataDir, sourcePrecedence: cfg.storage.sourcePrecedence as BarSource[] });
    const trader = ctx.peer<ArbiterToTrader, TraderToArbiter>('trader');
    const collector = ctx.peer<never, CollectorToArbiter>('collector');
    const ibkr = cfg.ibkr ? await (await import('./ibkr-feed.ts')).connectIbkrFeed(cfg, ctx) : null;
    const report = reportDelivery(storage.bars, ctx.emit);
    const toTrader = new TraderBatch((msg) => trader.send(msg), { reuse: true });
    const after = new AfterDelivery(ctx.clock, report, deliveryRecorder(storage.deliveries, ctx.clock));
    const arbiter = new Arbiter({
      store: storage.bars,
      checkpoints: storage.checkpoints,
      clock: ctx.clock,
      log: ctx.log,
      cacheMaxAgeMs: cfg.cacheMaxAgeMs,
      preloadBars: cfg.preloadBars,
      climbBackAfterBars: cfg.climbBackAfterBars,
      historicalPollMs: cfg.historicalPollMs,
      ibkr: ibkr?.port ?? null,
      send: (msg) => {
        toTrader.send(msg);
        after.reported(msg);
      },
      onDelivered: (bar, rung) => after.delivered(bar, rung),
    });
    ibkr?.bind(arbiter);
    collector.on('bars-written', (m) => arbiter.onWritten(m));
    trader.on('subscribe', (m) => arbiter.subscribe(m.symbols, m.barSize, m.after, m.warmup));
    trader.on('unsubscribe', () => arbiter.unsubscribe());
    arbiter.resume();
    return {
      handlers: {
        status: () => arbiter.status(),
      },
      async stop() {
        toTrader.flush();
        after.run();
        await arbiter.shutdown();
        await ibkr?.close();
        await storage.close();
      },
      metrics: () => arbiter.metrics(),
    };
  },
});
