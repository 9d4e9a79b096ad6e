/**
 * Assembles barkeep from a Config: the supervisor with the collector, arbiter and trader actors,
 * the main thread's read-only view of the cache, and the HTTP server. `barkeep serve` runs this.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import { actorConfigs, liveStartOf } from '../config/actor-configs.ts';
import { redactConfig } from '../config/load.ts';
import { type ClockSpec, clockFromSpec } from '../runtime/clock.ts';
import type { Logger } from '../runtime/log.ts';
import { Supervisor, type SupervisorPolicy } from '../runtime/supervisor.ts';
import { openStorage, type Storage } from '../storage/storage.ts';
import { lockDataDir } from '../storage/data-dir-lock.ts';
import { buildServer } from './app.ts';
import { createNotifier } from '../notify/webhook.ts';
import { notifyConfig, watchActors } from '../notify/watch.ts';
import type { Setting } from '../config/sources.ts';
import type { Registry } from 'prom-client';
import type { ClusterRuntime } from '../cluster/serve-cluster.ts';
import { EventHub } from './event-hub.ts';
import { BacktestJobs } from './backtest-jobs.ts';
import { defaultsFrom } from '../backtest/spec.ts';
import { actorSpecs } from './serve-actors.ts';
import type { SparePool } from '../runtime/spare-pool.ts';
import { StartupTimer } from './startup-timer.ts';

export interface EngineOptions {
  log: Logger;
  /** Replaces the clock the config asks for (tests drive a shared manual clock). */
  clock?: ClockSpec;
  policy?: Partial<SupervisorPolicy>;
  /** Every setting with where it came from (GET /config, barkeep config show). */
  settings?: Setting[];
  /** The actors' workers, already loading (serve-actors.ts, preloadActors); closed if the start fails. */
  spares?: SparePool;
  /** Marks of the start-up so far (barkeep serve's); the engine adds its own and logs them all. */
  timer?: StartupTimer;
}

export interface Engine {
  supervisor: Supervisor;
  storage: Storage;
  app: FastifyInstance;
  /** Base URL the server listens on. */
  url: string;
  stop(): Promise<void>;
}

export function clockSpecFor(config: Config): ClockSpec {
  if (config.runtime.clock === 'real') return { kind: 'real' };
  const start = config.runtime.clock_start ? Date.parse(config.runtime.clock_start) : Date.now();
  return { kind: 'accelerated', simStart: start, realStart: Date.now(), speed: config.runtime.clock_speed };
}

export async function startEngine(config: Config, opts: EngineOptions): Promise<Engine> {
  const log = opts.log;
  const timer = opts.timer ?? new StartupTimer();
  log.info({ data_dir: config.data_dir, server: `${config.server.host}:${config.server.port}` }, 'starting barkeep');
  // The whole effective config only at debug, and never with its secrets.
  log.debug({ config: redactConfig(config) }, 'effective config');
  const cfg = actorConfigs(config);
  // In cluster mode what the actors collect and trade is the node's to decide (its owned symbols),
  // not the configured lists: they start idle and the cluster drives them.
  if (config.cluster.enabled) {
    cfg.collector.autostart = null;
    cfg.trader.autostart = null;
  }
  // Before anything opens the journal: one process per data directory (a second one would trade
  // the same account from the same journal and double every order).
  const lock = await lockDataDir(config.data_dir).catch((err) => {
    opts.spares?.close();
    throw err;
  });
  timer.mark('lock');
  let storage: Storage | undefined;
  let app: FastifyInstance | undefined;
  let supervisor: Supervisor | undefined;
  let cluster: ClusterRuntime | undefined;
  // Backtests requested over HTTP run on their own worker pool, started with the first one.
  const backtests = new BacktestJobs({ dataDir: config.data_dir, sourcePrecedence: config.storage.source_precedence });
  const undo = async () => {
    await cluster?.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await backtests.close().catch(() => undefined);
    opts.spares?.close();
    await supervisor?.stop().catch(() => undefined);
    await storage?.close().catch(() => undefined);
    await lock.release();
  };
  let url: string;
  try {
    storage = openStorage({ path: config.data_dir, sourcePrecedence: config.storage.source_precedence });
    timer.mark('storage');
    const events = new EventHub();
    // One clock spec for the actors and the server (an HTTP backtest's default `to` is the engine's now).
    const clockSpec = opts.clock ?? clockSpecFor(config);
    const engineClock = clockFromSpec(clockSpec);
    supervisor = new Supervisor({
      onEvent: (actor, ev) => events.publish(actor, ev),
      actors: actorSpecs(cfg),
      ...(opts.spares ? { spares: opts.spares } : {}),
      clock: clockSpec,
      log,
      logLevel: config.log.level,
      faults: config.runtime.faults,
      policy: {
        backoffInitialMs: config.supervisor.backoff_initial_ms,
        backoffMaxMs: config.supervisor.backoff_max_ms,
        maxRestarts: config.supervisor.max_restarts,
        restartWindowMs: config.supervisor.restart_window_ms,
        shutdownTimeoutMs: config.supervisor.shutdown_timeout_ms,
        ...opts.policy,
      },
    });
    app = await buildServer({
      supervisor,
      bars: storage.bars,
      storage,
      requestTimeoutMs: config.server.request_timeout_ms,
      log,
      apiToken: config.server.api_token,
      faults: config.runtime.faults,
      host: config.server.host,
      events,
      backtests: { jobs: backtests, defaults: defaultsFrom(config.trader, cfg.trader), symbols: config.trader.symbols, now: () => engineClock.now() },
      defaults: {
        collector: { symbols: config.collector.symbols, bar_size: config.collector.bar_size },
        live: liveStartOf(config.trader),
      },
      journal: storage.orders,
      settings: opts.settings,
      dataDir: config.data_dir,
      health: { collectIntervalMs: config.collector.market_hours_interval_s * 1000, now: () => engineClock.now() },
    });
    // The port is bound before any actor runs: a port in use stops the start before a collector,
    // order manager or trading loop has done anything. Until the actors run, /health answers 503.
    // The cluster's modules (the NATS client) load only in cluster mode.
    const clusterModules = config.cluster.enabled ? await Promise.all([import('../cluster/serve-cluster.ts'), import('../cluster/metrics.ts')]) : null;
    if (clusterModules) {
      const [, { registerClusterMetrics }] = clusterModules;
      app.get('/cluster', async (_req, reply) => (cluster ? cluster.status() : reply.code(503).send({ error: 'cluster_starting', message: 'the cluster node is still joining' })));
      registerClusterMetrics((app as unknown as { metricsRegistry: Registry }).metricsRegistry, () => cluster?.node);
    }
    timer.mark('server');
    url = await app.listen({ host: config.server.host, port: config.server.port });
    lock.setUrl(url);
    timer.mark('listen');
    // A cluster node joins before its actors run: without NATS it refuses to start, rather than
    // collect and trade symbols that other nodes own.
    if (clusterModules) {
      cluster = await clusterModules[0].startCluster(config, { log, bars: storage.bars, url, now: Date.now });
      if (cfg.trader.cluster) cfg.trader.cluster.nodeId = cluster.node.nodeId;
    }
    await supervisor.start();
    timer.mark('actors');
    cluster?.attach(supervisor);
  } catch (err) {
    await undo();
    throw err;
  }
  const watcher = watchActors(supervisor!, createNotifier(notifyConfig(config), log));
  // Where the start-up's time went (bench/cold-start.ts reads it): the phases in ms since the
  // process started, and each actor's worker load and activation.
  log.info({ url, startup: { ...timer.report(), actors: supervisor!.timings() } }, 'barkeep serving');
  let stopped: Promise<void> | undefined;
  return {
    supervisor,
    storage,
    app,
    url,
    stop() {
      stopped ??= (async () => {
        await watcher.close();
        await cluster?.stop();
        await app!.close();
        await backtests.close();
        await supervisor!.stop();
        await storage!.close();
        await lock.release();
      })();
      return stopped;
    },
  };
}
