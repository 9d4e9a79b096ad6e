/**
 * Membership and symbol ownership.
 *
 * Design decisions:
 * - Members announce themselves in a KV bucket whose entries expire (the bucket's TTL) unless the
 *   member beats again: a dead or frozen node drops out by itself, with no one to declare it dead.
 * - Each symbol's owner is the rendezvous winner over the live members. Owning also takes a lease:
 *   a KV key per symbol, created only when absent and renewed only at the revision we hold, so two
 *   nodes never hold one symbol, even while their member lists disagree for a moment.
 * - A lease the owner no longer wins (a node joined) is given up with a delete at our revision; a
 *   dead holder's lease expires with the bucket's TTL and the new winner creates it.
 * Footgun: a node frozen longer than the lease TTL still believes it owns its symbols until its next
 * tick. What stops it from acting on that belief is the order fence (order-fence.ts), not this file.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { assign } from './rendezvous.ts';
import { LEASES_BUCKET, MEMBERS_BUCKET, symbolToken, tokenSymbol } from './subjects.ts';

export interface MemberInfo {
  node_id: string;
  url: string;
  /** ISO time the node joined. */
  since: string;
}

export interface OwnershipChange {
  owned: string[];
  gained: string[];
  lost: string[];
}

/**
 * Lease requests in flight at once per tick. High on purpose: a tick's renewals go out together
 * and come back in a few round trips, however busy the event loop is. At 64, the 1,700 leases of a
 * node of a 5,000-symbol cluster took 27 sequential round trips, each one waiting its turn behind
 * a burst of bars, and under an ingest burst a round took longer than the lease TTL: leases
 * expired and moved while their holder was alive and well.
 */
const LEASE_CONCURRENCY = 2048;

async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function memberKey(nodeId: string): string {
  return Buffer.from(nodeId).toString('base64url');
}

export class Ownership {
  private symbols: string[] = [];
  /** Symbol → the lease revision we hold. */
  private held = new Map<string, number>();
  private lastMembers: MemberInfo[] = [];
  leaseChanges = 0;
  /** Ticks completed, and the longest one (ms): how close renewals come to the TTL. */
  ticks = 0;
  longestTickMs = 0;
  /** The last rendezvous assignment and the member list it was made for (a tick with the same members reuses it). */
  private assignment: { members: string; winners: Map<string, string> } | undefined;

  constructor(
    private readonly members: KV,
    private readonly leases: KV,
    private readonly me: MemberInfo,
    private readonly jsm: JetStreamManager,
    private readonly onChange: (c: OwnershipChange) => Promise<void> | void = () => {},
  ) {}

  get nodeId(): string {
    return this.me.node_id;
  }

  setSymbols(symbols: readonly string[]): void {
    this.symbols = [...new Set(symbols)].sort();
    this.assignment = undefined;
  }

  private winners(ids: readonly string[]): Map<string, string> {
    const members = [...ids].sort().join('\n');
    if (this.assignment?.members !== members) this.assignment = { members, winners: assign(this.symbols, ids) };
    return this.assignment.winners;
  }

  owned(): string[] {
    return [...this.held.keys()].sort();
  }

  owns(symbol: string): boolean {
    return this.held.has(symbol);
  }

  memberList(): MemberInfo[] {
    return this.lastMembers;
  }

  async beat(): Promise<void> {
    await this.members.put(memberKey(this.me.node_id), JSON.stringify(this.me));
  }

  async listMembers(): Promise<MemberInfo[]> {
    const out = new Map<string, MemberInfo>();
    for (const k of await this.keysOf(MEMBERS_BUCKET)) {
      const e = await this.members.get(k);
      if (e?.operation !== 'PUT') continue;
      try {
        out.set(k, JSON.parse(e.string()) as MemberInfo);
      } catch {
        /* a malformed entry is not a member */
      }
    }
    return [...out.values()].sort((a, b) => a.node_id.localeCompare(b.node_id));
  }

  /** Symbol → holder, for every lease in the bucket. */
  async leaseTable(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const k of await this.keysOf(LEASES_BUCKET)) {
      const e = await this.leases.get(k);
      if (e && e.operation === 'PUT') out[tokenSymbol(k)] = e.string();
    }
    return out;
  }

  /**
   * The keys a bucket holds, from one stream-info request. (The KV client's keys() follows the
   * bucket until it sees no pending update, which, while leases and beats keep writing, can take
   * arbitrarily long: a tick or a GET /cluster waited on it.)
   */
  private async keysOf(bucket: string): Promise<string[]> {
    const prefix = `$KV.${bucket}.`;
    const info = await this.jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}>` });
    return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(prefix.length));
  }

  /** One round: beat, read the members, take, renew and give up leases. */
  async tick(): Promise<OwnershipChange> {
    const began = performance.now();
    try {
      return await this.round();
    } finally {
      this.ticks++;
      this.longestTickMs = Math.max(this.longestTickMs, performance.now() - began);
    }
  }

  private async round(): Promise<OwnershipChange> {
    await this.beat();
    this.lastMembers = await this.listMembers();
    const ids = this.lastMembers.map((m) => m.node_id);
    if (!ids.includes(this.me.node_id)) ids.push(this.me.node_id);
    // 5,000 symbols over three members is 15,000 hashes: done again only when the members change.
    const winners = this.winners(ids);
    const gained: string[] = [];
    const lost: string[] = [];
    // Each symbol's lease is its own KV round trip: many run at once, or thousands of symbols
    // would not be renewed within one lease TTL.
    const step = async (symbol: string) => {
      const key = symbolToken(symbol);
      const mine = winners.get(symbol) === this.me.node_id;
      const rev = this.held.get(symbol);
      if (mine) {
        if (rev !== undefined) {
          try {
            this.held.set(symbol, await this.leases.update(key, this.me.node_id, rev));
          } catch {
            // A renewal that timed out may still have landed: the entry naming us is still ours
            // (no other node writes our id). Gone or naming another node: our lease expired (we
            // were frozen or cut off) and someone else may hold it now. Not known (the look timed
            // out too): still ours until a look says otherwise; the order fence, not this belief,
            // is what keeps a stale owner from sending.
            const e = await this.leases.get(key).catch(() => undefined);
            if (e === undefined) return;
            if (e?.operation === 'PUT' && e.string() === this.me.node_id) this.held.set(symbol, e.revision);
            else {
              this.held.delete(symbol);
              lost.push(symbol);
            }
          }
        } else {
          try {
            this.held.set(symbol, await this.leases.create(key, this.me.node_id));
            gained.push(symbol);
          } catch {
            // Still held by its previous owner until it gives it up or its lease expires; or by us
            // (a create that timed out but landed, a restart under the same node id): ours then.
            const e = await this.leases.get(key).catch(() => null);
            if (e?.operation === 'PUT' && e.string() === this.me.node_id) {
              this.held.set(symbol, e.revision);
              gained.push(symbol);
            }
          }
        }
      } else if (rev !== undefined) {
        this.held.delete(symbol);
        lost.push(symbol);
        await this.leases.delete(key, { previousSeq: rev }).catch(() => undefined);
      }
    };
    const wanted = new Set(this.symbols);
    const gone = [...this.held.keys()].filter((s) => !wanted.has(s));
    await inParallel(this.symbols, LEASE_CONCURRENCY, step);
    await inParallel(gone, LEASE_CONCURRENCY, async (symbol) => {
      const rev = this.held.get(symbol);
      if (rev === undefined) return;
      this.held.delete(symbol);
      lost.push(symbol);
      await this.leases.delete(symbolToken(symbol), { previousSeq: rev }).catch(() => undefined);
    });
    gained.sort();
    lost.sort();
    const change = { owned: this.owned(), gained, lost };
    if (gained.length || lost.length) {
      this.leaseChanges += gained.length + lost.length;
      await this.onChange(change);
    }
    return change;
  }

  /** Gives up every lease and leaves the member list (a clean stop hands symbols over at once). */
  async leave(): Promise<void> {
    await inParallel([...this.held], LEASE_CONCURRENCY, ([symbol, rev]) =>
      this.leases.delete(symbolToken(symbol), { previousSeq: rev }).then(
        () => undefined,
        () => undefined,
      ),
    );
    this.held.clear();
    await this.members.delete(memberKey(this.me.node_id)).catch(() => undefined);
  }
}
