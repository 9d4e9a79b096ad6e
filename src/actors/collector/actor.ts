/**
 * The collector's thread: builds its sources from the config, opens the cache, and serves the
 * protocol in protocol.ts. After every write it tells the arbiter which keys are new.
 */
import { isBarSize, type BarSize } from '../../market/bar-size.ts';
import { isValidSymbol } from '../../market/bar.ts';
import { MarketCalendar } from '../../market/calendar.ts';
import type { Clock } from '../../market/clock.ts';
import { defineActor } from '../../runtime/actor.ts';
import type { Logger } from '../../runtime/log.ts';
import { AlpacaSource } from '../../sources/alpaca/source.ts';
import { MassiveSource } from '../../sources/massive/source.ts';
import { SimMarket } from '../../sources/sim/market.ts';
import type { SharedRateGate } from '../../sources/rate-limiter.ts';
import { openClusterBudgets } from '../../cluster/collector-budgets.ts';
import type { HistoricalBarSource } from '../../sources/types.ts';
import { openStorage } from '../../storage/storage.ts';
import type { BarSource } from '../../market/bar.ts';
import { Collector } from './collector.ts';
import { createNotifier } from '../../notify/webhook.ts';
import { buildStreams } from './streams.ts';
import { Rollup } from './rollup.ts';
import { cycleEvent, writtenEvent } from './collector-events.ts';
import { DeferredEvents, WrittenBatch } from './written-batch.ts';
import { CollectorError, type CollectorConfig, type CollectorRequests, type CollectorToArbiter } from './protocol.ts';

function invalid(field: string, message: string): Error {
  return new CollectorError('BAD_REQUEST', message, { field });
}

/** Massive, else Alpaca, else the simulated market; both vendors when both are configured. */
export function buildSources(cfg: CollectorConfig, clock: Clock, log: Logger, calendar: MarketCalendar, shared: { massive?: SharedRateGate; alpaca?: SharedRateGate } = {}): HistoricalBarSource[] {
  const sources: HistoricalBarSource[] = [];
  if (cfg.massive) {
    const m = cfg.massive;
    sources.push(new MassiveSource({ apiKey: m.apiKey, restUrl: m.restUrl, rateLimitPerMin: m.rateLimitPerMin, timeoutMs: m.timeoutMs, clock, logger: log, sharedRate: shared.massive }));
  }
  if (cfg.alpaca) {
    const a = cfg.alpaca;
    sources.push(
      new AlpacaSource({
        keyId: a.keyId,
        secretKey: a.secretKey,
        dataUrl: a.dataUrl,
        feed: a.feed as never,
        rateLimitPerMin: a.rateLimitPerMin,
        timeoutMs: a.timeoutMs,
        clock,
        logger: log,
        sharedRate: shared.alpaca,
      }),
    );
  }
  if (sources.length === 0) sources.push(new SimMarket({ seed: cfg.sim.seed, clock, session: cfg.sim.session, calendar }));
  return sources;
}

export default defineActor<CollectorRequests, CollectorConfig>({
  async start(ctx) {
    const cfg = ctx.config;
    const storage = openStorage({
      path: cfg.dataDir,
      retentionDays: cfg.storage.retentionDays,
      sourcePrecedence: cfg.storage.sourcePrecedence as BarSource[],
    });
    const pruning = storage.bars.startPruning(ctx.clock, cfg.storage.pruneIntervalS * 1000);
    const calendar = new MarketCalendar();
    // Cluster mode: each vendor key's budget is the cluster's, shared with the nodes using it.
    const budgets = cfg.cluster ? await openClusterBudgets(cfg, ctx.clock) : null;
    const sources = buildSources(cfg, ctx.clock, ctx.log, calendar, budgets?.gates);
    const arbiter = ctx.peer<CollectorToArbiter, never>('arbiter');
    const notifier = createNotifier(cfg.notify, ctx.log);
    const written = new WrittenBatch((msg) => arbiter.send(msg));
    // The dashboard's `written` events go in the next turn, after the notice to the arbiter.
    const events = new DeferredEvents((barSize, symbol, starts) => ctx.emit('collector', writtenEvent(barSize, symbol, starts)));
    const announce = (barSize: BarSize, symbol: string, starts: number[], sources?: readonly number[]) => {
      written.add(barSize, symbol, starts, sources);
      events.push(barSize, symbol, starts);
    };
    // Bar sizes the loop trades above the collected one are built here from the written bars (rollup.ts).
    const alwaysOpen = cfg.sim.session === 'always' && !cfg.massive && !cfg.alpaca;
    const rollup = new Rollup({ store: storage.bars, checkpoints: storage.checkpoints, calendar, clock: ctx.clock, log: ctx.log, alwaysOpen, historyDays: cfg.backfillDays, announce });
    const collector = new Collector({
      sources,
      store: storage.bars,
      checkpoints: storage.checkpoints,
      calendar,
      clock: ctx.clock,
      log: ctx.log,
      schedule: { ...cfg.schedule, closedDayCatchUp: true },
      backfillDays: cfg.backfillDays,
      failoverAfterFailures: cfg.failoverAfterFailures,
      retryPreferredAfterMs: cfg.retryPreferredAfterMs,
      alwaysOpen: cfg.sim.session === 'always',
      onWritten: (barSize, symbol, starts, sources) => {
        announce(barSize, symbol, starts, sources);
        rollup.onWritten(barSize, symbol, starts);
      },
      onCycle: (status) => ctx.emit('collector', cycleEvent(status)),
      onFailure: (f) => notifier.send('collection_failed', f),
      streams: buildStreams(cfg, ctx.clock, ctx.log),
      reconcileIntervalMs: cfg.reconcileIntervalMs,
      streamStallMs: cfg.streamStallMs,
    });
    // Config wins at a process start (incarnation 0); an actor restart resumes where it was.
    if (cfg.resume !== false) await collector.resume(cfg.autostart, ctx.incarnation === 0);
    return {
      handlers: {
        start({ symbols, bar_size }) {
          if (!Array.isArray(symbols) || symbols.length === 0) throw invalid('symbols', 'symbols: needs at least one symbol');
          symbols.forEach((s, i) => {
            if (!isValidSymbol(s)) throw invalid(`symbols.${i}`, `symbols.${i}: ${JSON.stringify(s)} is not a ticker symbol`);
          });
          if (!isBarSize(bar_size)) throw invalid('bar_size', `bar_size: ${JSON.stringify(bar_size)} is not a bar size`);
          return collector.start(symbols, bar_size);
        },
        stop: () => collector.stop(),
        status: () => collector.status(),
        collectNow: () => collector.collectNow(),
        backfill({ symbol, bar_size, from, to }) {
          if (!isValidSymbol(symbol)) throw invalid('symbol', `symbol: ${JSON.stringify(symbol)} is not a ticker symbol`);
          if (!isBarSize(bar_size)) throw invalid('bar_size', `bar_size: ${JSON.stringify(bar_size)} is not a bar size`);
          if (typeof from !== 'number' || !Number.isFinite(from)) throw invalid('from', `from: ${JSON.stringify(from)} is not epoch ms`);
          if (typeof to !== 'number' || !Number.isFinite(to)) throw invalid('to', `to: ${JSON.stringify(to)} is not epoch ms`);
          if (from >= to) throw invalid('from', `from: ${new Date(from).toISOString()} is not before to (${new Date(to).toISOString()})`);
          return collector.startBackfill(symbol, bar_size, from, to);
        },
        backfillStatus: () => collector.backfillStatus(),
      },
      async stop() {
        pruning.cancel();
        await collector.shutdown();
        await rollup.idle();
        await Promise.all(sources.map((s) => s.close?.()));
        await budgets?.close();
        await notifier.close();
        await storage.close();
      },
      metrics: () => collector.metrics(),
    };
  },
});
