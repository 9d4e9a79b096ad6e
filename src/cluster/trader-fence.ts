/**
 * The trader thread's own connection to the cluster's order fence. The node's ownership (main
 * thread) marks each takeover; the trader adopts the symbols it is started on and lets go of the
 * others, so an order for a symbol the trader was not (or no longer) started on is refused.
 */
import { connectCluster, credentialsFromEnv } from './connection.ts';
import { OrderFence } from './order-fence.ts';

export interface TraderFence {
  fence: OrderFence;
  /** Adopts `symbols` and releases every other symbol. */
  hold(symbols: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export async function openOrderFence(opts: { natsUrl: string; nodeId: string; leaseTtlMs: number }): Promise<TraderFence> {
  const conn = await connectCluster({
    natsUrl: opts.natsUrl,
    credentials: credentialsFromEnv(process.env),
    memberTtlMs: opts.leaseTtlMs,
    leaseTtlMs: opts.leaseTtlMs,
    barsMaxAgeMs: 7 * 24 * 3600_000,
    name: `barkeep ${opts.nodeId} trader`,
  });
  const fence = new OrderFence(conn.js, conn.jsm, opts.nodeId);
  let held = new Set<string>();
  return {
    fence,
    async hold(symbols) {
      const next = new Set(symbols);
      for (const s of held) if (!next.has(s)) fence.release(s);
      for (const s of next) if (!held.has(s)) await fence.adopt(s);
      held = next;
    },
    close: () => conn.close(),
  };
}
