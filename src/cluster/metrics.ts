/** The cluster's figures on /metrics: per-node stream lag, lease changes, fenced appends, bars. */
import client, { type Registry } from 'prom-client';
import type { ClusterNode } from './node.ts';

export function registerClusterMetrics(registry: Registry, node: () => ClusterNode | undefined): void {
  let last: Awaited<ReturnType<ClusterNode['metrics']>> | null = null;
  const read = async () => {
    const n = node();
    if (n) last = await n.metrics().catch(() => last);
    return last;
  };
  new client.Gauge({
    name: 'barkeep_cluster_stream_lag',
    help: 'Bars in BARKEEP_BARS this node has not yet written to its cache',
    registers: [registry],
    async collect() {
      const m = await read();
      this.set(m?.stream_lag ?? 0);
    },
  });
  const counter = (name: string, help: string, pick: (m: NonNullable<typeof last>) => number) =>
    new client.Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        // The node keeps the running totals; the counter shows them as they are at the scrape.
        const m = await read();
        this.reset();
        this.inc(m ? pick(m) : 0);
      },
    });
  counter('barkeep_cluster_lease_changes_total', 'Symbols this node gained or lost', (m) => m.lease_changes);
  counter('barkeep_cluster_fenced_appends_total', 'Order appends refused because this node no longer held the lease', (m) => m.fenced_appends);
  counter('barkeep_cluster_bars_published_total', 'Bars this node published for the symbols it owns', (m) => m.bars_published);
  counter('barkeep_cluster_bars_replicated_total', "Bars written to this node's cache from the cluster stream", (m) => m.bars_replicated);
}
