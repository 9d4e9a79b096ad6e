/**
 * Cluster mode inside `barkeep serve`: the node's ownership drives the actors through their public
 * control requests, and the bars the collector writes for owned symbols go out to the cluster.
 *
 * - The collector collects, and the trader trades, exactly the symbols this node owns (of the
 *   configured ones). Each ownership change restarts them on the new set; a change that could not
 *   be applied (an actor restarting) is applied again at the next tick.
 * - The node publishes what its collector wrote by tailing its own cache: every `publishEveryMs` the
 *   bars of each owned symbol newer than the last published one, and, every `republishEveryMs`, the
 *   last 15 minutes again, so the vendors' late corrections reach the replicas (an unchanged bar has
 *   the same message id and is dropped by JetStream as a duplicate).
 * The trader thread has its own link (trader-fence.ts): the order fence, the shared paper account,
 * and the adoption of a taken-over symbol's orders; the collector thread's link shares the vendor
 * budgets (collector-budgets.ts). Ownership is applied only between ticks, once every gained
 * symbol's takeover marker is appended.
 */
import os from 'node:os';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../runtime/log.ts';
import type { Supervisor } from '../runtime/supervisor.ts';
import type { CollectorRequests } from '../actors/collector/protocol.ts';
import type { TraderRequests } from '../actors/trader/protocol.ts';
import type { BarStore } from '../storage/bar-store.ts';
import { credentialsFromEnv } from './connection.ts';
import { ClusterNode, type ClusterStatus } from './node.ts';

const CORRECTION_WINDOW_MS = 15 * 60_000;

export interface ClusterRuntime {
  node: ClusterNode;
  status(): Promise<ClusterStatus>;
  /** Starts driving the actors (call once they run). */
  attach(supervisor: Supervisor): void;
  stop(): Promise<void>;
}

export function defaultNodeId(port: number): string {
  return `${os.hostname()}:${port}`;
}

export async function startCluster(config: Config, deps: { log: Logger; bars: BarStore; url: string; now: () => number; env?: NodeJS.ProcessEnv }): Promise<ClusterRuntime> {
  const c = config.cluster;
  const log = deps.log.child({ component: 'cluster' });
  const symbols = [...new Set([...config.collector.symbols, ...config.trader.symbols])];
  const barSize = config.collector.bar_size;
  let supervisor: Supervisor | null = null;
  let applied: string | null = null;
  let applying: Promise<void> = Promise.resolve();
  const lastPublished = new Map<string, number>();

  const apply = () => {
    applying = applying.then(async () => {
      if (!supervisor) return;
      await node.settled();
      const owned = node.owned();
      const key = owned.join(',');
      if (key === applied) return;
      const collector = supervisor.handle<CollectorRequests>('collector');
      const trader = supervisor.handle<TraderRequests>('trader');
      try {
        const collect = owned.filter((s) => config.collector.symbols.includes(s));
        if (collect.length) await collector.call('start', { symbols: collect, bar_size: barSize });
        else await collector.call('stop', {});
        if (config.trader.autostart) {
          const trade = owned.filter((s) => config.trader.symbols.includes(s));
          if (trade.length) {
            await trader.call('start', {
              symbols: trade,
              bar_size: config.trader.bar_size,
              strategy: config.trader.strategy,
              strategy_params: config.trader.strategy_params,
              broker: config.trader.broker,
            });
          } else await trader.call('stop', {});
        }
        applied = key;
        log.info({ owned }, 'cluster: collecting and trading the symbols this node owns');
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cluster: ownership not applied yet; retrying at the next tick');
      }
    });
    return applying;
  };

  const node = new ClusterNode({
    nodeId: c.node_id ?? defaultNodeId(new URL(deps.url).port ? Number(new URL(deps.url).port) : config.server.port),
    url: deps.url,
    natsUrl: c.nats_url,
    credentials: credentialsFromEnv(deps.env ?? process.env),
    symbols,
    store: deps.bars,
    now: deps.now,
    leaseTtlMs: c.lease_ttl_s * 1000,
    onOwnership: (change) => {
      for (const s of change.gained) lastPublished.delete(s);
      log.info({ gained: change.gained, lost: change.lost }, 'cluster: ownership changed');
      void apply();
    },
    onError: (err) => log.warn({ err: (err as Error).message }, 'cluster: error'),
  });
  await node.start();

  const publishNew = async (rewindAll: boolean) => {
    deps.bars.refresh();
    for (const s of node.owned()) {
      const latest = deps.bars.latest(s, barSize);
      if (!latest) continue;
      const last = lastPublished.get(s);
      const from = rewindAll || last === undefined ? latest.start - CORRECTION_WINDOW_MS : last + 1;
      if (latest.start < from) continue;
      const bars = deps.bars.range(s, barSize, from, latest.start);
      if (bars.length) await node.publishBars(bars);
      lastPublished.set(s, latest.start);
    }
  };
  let publishing = false;
  let ticks = 0;
  const every = Math.round(c.republish_every_s / c.publish_every_s);
  const timer = setInterval(() => {
    if (publishing) return;
    publishing = true;
    ticks++;
    void publishNew(ticks % every === 0)
      .then(() => apply())
      .catch((err) => log.warn({ err: (err as Error).message }, 'cluster: publishing bars failed; retrying'))
      .finally(() => (publishing = false));
  }, c.publish_every_s * 1000);
  timer.unref();

  return {
    node,
    status: () => node.status(),
    attach(sup) {
      supervisor = sup;
      void apply();
    },
    async stop() {
      clearInterval(timer);
      await applying.catch(() => undefined);
      await node.stop();
    },
  };
}
