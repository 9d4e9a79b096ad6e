/**
 * The trader thread's own link to the cluster: the order fence, the shared paper account, and the
 * adoption of a symbol's orders when the node takes it over.
 *
 * It opens only what it uses: a JetStream connection, the lease bucket (read, never created) and
 * the paper bucket when the paper broker is used; streams and the membership bucket are the node's.
 * The node's ownership (main thread) marks each takeover; the trader adopts the symbols it is
 * started on, and only those whose lease this node holds, and lets go of the others, so an order
 * for a symbol the trader was not (or no longer) started on is refused.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { OrderJournal, OrderRecord } from '../storage/types.ts';
import type { Broker } from '../actors/trader/broker.ts';
import type { PaperBrokerOptions } from '../actors/trader/paper-broker.ts';
import { connectJetStream, credentialsFromEnv } from './connection.ts';
import { OrderFence, type OrderEvent } from './order-fence.ts';
import { SharedPaperBroker } from './paper-shared.ts';
import { LEASES_BUCKET, symbolToken } from './subjects.ts';

export interface TraderFence {
  fence: OrderFence;
  /**
   * Adopts those of `symbols` whose lease this node holds and releases every other symbol;
   * resolves to the symbols newly adopted.
   */
  hold(symbols: readonly string[]): Promise<string[]>;
  /** The cluster's paper account, shared by every node. */
  paperBroker(opts: Omit<PaperBrokerOptions, 'checkpoints'>): Promise<SharedPaperBroker>;
  /**
   * The orders the previous owners of `symbols` placed (from BARKEEP_ORDERS) that `journal` does
   * not hold and that `broker` still works or has fills of: what this node takes over.
   */
  ordersToAdopt(symbols: readonly string[], journal: OrderJournal, broker: Broker): Promise<OrderRecord[]>;
  close(): Promise<void>;
}

export async function openOrderFence(opts: { natsUrl: string; nodeId: string; leaseTtlMs: number }): Promise<TraderFence> {
  const link = await connectJetStream({ natsUrl: opts.natsUrl, credentials: credentialsFromEnv(process.env), name: `barkeep ${opts.nodeId} trader` });
  const fence = new OrderFence(link.js, link.jsm, opts.nodeId);
  let leases: KV | undefined;
  let held = new Set<string>();
  const holder = async (symbol: string): Promise<string | null> => {
    leases ??= await new Kvm(link.js).open(LEASES_BUCKET);
    const e = await leases.get(symbolToken(symbol));
    return e && e.operation === 'PUT' ? e.string() : null;
  };
  return {
    fence,
    async hold(symbols) {
      const next = new Set<string>();
      const gained: string[] = [];
      for (const s of symbols) {
        if (held.has(s)) {
          next.add(s);
          continue;
        }
        // The subject's last sequence first, the lease after: a takeover by another node creates
        // its lease before its marker, so a lease still ours means no marker came after our read.
        await fence.adopt(s);
        if ((await holder(s)) === opts.nodeId) {
          next.add(s);
          gained.push(s);
        } else fence.release(s);
      }
      for (const s of held) if (!next.has(s)) fence.release(s);
      held = next;
      return gained;
    },
    paperBroker: (paper) => SharedPaperBroker.open(link.js, paper),
    async ordersToAdopt(symbols, journal, broker) {
      const placed = new Map<string, OrderRecord>();
      for (const s of symbols) {
        for (const { event } of await fence.history(s)) {
          const record = (event as OrderEvent & { record?: OrderRecord }).record;
          if (event.type === 'placed' && record && record.clientOrderId === event.client_order_id && !journal.get(record.clientOrderId)) {
            placed.set(record.clientOrderId, record);
          }
        }
      }
      if (placed.size === 0) return [];
      // A fill is stamped with its bar's start, which can be before the order was created (the
      // decision comes after its bar closed) but never before the order's own bar.
      let since = Infinity;
      for (const r of placed.values()) since = Math.min(since, r.barStart);
      const working = new Set((await broker.openOrders()).map((o) => o.clientOrderId));
      const filled = new Set((await broker.executions(since)).map((f) => f.clientOrderId));
      // An order the old owner appended but never sent (it died in between) is not adopted: the
      // broker never had it, and the strategy on this node decides afresh.
      return [...placed.values()].filter((r) => working.has(r.clientOrderId) || filled.has(r.clientOrderId));
    },
    close: () => link.close(),
  };
}
