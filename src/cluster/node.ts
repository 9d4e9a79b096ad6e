/**
 * One barkeep node of a cluster: its NATS connection, its place in the member list, the symbols it
 * owns, the replica that keeps its cache complete, the bar publisher and the order fence.
 *
 * Lifecycle: start() connects (refusing without NATS or JetStream), joins, takes its first leases
 * and starts the replica; every `tickMs` it beats and re-balances; stop() gives its leases up and
 * leaves, so the others take its symbols at once rather than after the lease TTL.
 */
import type { Bar } from '../market/bar.ts';
import { BarPublisher, BarReplica, type ReplicaStore } from './bar-replication.ts';
import { connectCluster, connectJetStream, type ClusterConnection, type ClusterCredentials, type JetStreamLink } from './connection.ts';
import { OrderFence } from './order-fence.ts';
import { Ownership, type MemberInfo, type OwnershipChange } from './ownership.ts';

export interface ClusterNodeOptions {
  nodeId: string;
  url: string;
  natsUrl: string;
  credentials?: ClusterCredentials;
  symbols: readonly string[];
  /** The node's cache, fed by its replica (a BarStore: visible at the commit, acknowledged once on disk). */
  store: ReplicaStore;
  now: () => number;
  leaseTtlMs: number;
  /** Beat and re-balance this often; a third of the lease TTL by default. */
  tickMs?: number;
  barsMaxAgeMs?: number;
  /** Called after each change of the owned set, once every gained symbol's takeover is marked. */
  onOwnership?: (change: OwnershipChange) => void;
  onError?: (err: unknown) => void;
}

export interface ClusterStatus {
  node_id: string;
  members: MemberInfo[];
  leases: Record<string, string>;
  owned: string[];
}

export class ClusterNode {
  private conn!: ClusterConnection;
  private data!: JetStreamLink;
  private ownership!: Ownership;
  private replica!: BarReplica;
  publisher!: BarPublisher;
  fence!: OrderFence;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> = Promise.resolve();
  private marking: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: ClusterNodeOptions) {}

  get nodeId(): string {
    return this.opts.nodeId;
  }

  async start(): Promise<void> {
    const ttl = this.opts.leaseTtlMs;
    this.conn = await connectCluster({
      natsUrl: this.opts.natsUrl,
      credentials: this.opts.credentials,
      memberTtlMs: ttl,
      leaseTtlMs: ttl,
      barsMaxAgeMs: this.opts.barsMaxAgeMs ?? 7 * 24 * 3600_000,
      name: `barkeep ${this.opts.nodeId}`,
    });
    // Bars travel on a connection of their own: on the ownership connection a burst of replicated
    // bars would queue the lease renewals' acknowledgements behind it, and leases would expire.
    this.data = await connectJetStream({ natsUrl: this.opts.natsUrl, credentials: this.opts.credentials, name: `barkeep ${this.opts.nodeId} bars` }).catch(async (err) => {
      await this.conn.close();
      throw err;
    });
    this.publisher = new BarPublisher(this.data.js);
    this.fence = new OrderFence(this.conn.js, this.conn.jsm, this.opts.nodeId);
    const me: MemberInfo = { node_id: this.opts.nodeId, url: this.opts.url, since: new Date(this.opts.now()).toISOString() };
    this.ownership = new Ownership(this.conn.members, this.conn.leases, me, this.conn.jsm, (c) => this.changed(c));
    this.ownership.setSymbols(this.opts.symbols);
    this.replica = new BarReplica(this.data.js, this.data.jsm, {
      durable: `replica_${Buffer.from(this.opts.nodeId).toString('hex')}`,
      store: this.opts.store,
      now: this.opts.now,
      onError: this.opts.onError,
    });
    await this.replica.start();
    await this.tick();
    this.startTimer();
  }

  /**
   * Ticks every `tickMs`. A timer tick that finds the previous round still running is not queued
   * behind it but runs once it ends: the renewals of a slow round (a busy event loop) still follow
   * each other a tick apart at most, not two.
   */
  private startTimer(): void {
    let running = false;
    let missed = false;
    const round = () => {
      if (running) {
        missed = true;
        return;
      }
      running = true;
      missed = false;
      void this.tick();
      // The round itself, not the takeovers it started (those run beside the next rounds).
      void this.ticking.finally(() => {
        running = false;
        if (missed && this.timer) round();
      });
    };
    this.timer = setInterval(round, this.opts.tickMs ?? Math.max(100, Math.floor(this.opts.leaseTtlMs / 3)));
    this.timer.unref();
  }

  /**
   * Marks each gained symbol's takeover, then tells the caller. Runs beside the ticks, in order of
   * the changes: a failover hands thousands of symbols over, and the ticks must go on renewing the
   * leases meanwhile. settled() waits for it.
   */
  private changed(change: OwnershipChange): void {
    this.marking = this.marking.then(async () => {
      for (const s of change.lost) this.fence.release(s);
      const gained = [...change.gained];
      const worker = async () => {
        for (let s = gained.shift(); s !== undefined; s = gained.shift()) {
          try {
            await this.fence.mark(s);
          } catch (err) {
            // Unmarked, the symbol's appends are fenced until it is taken over again.
            this.opts.onError?.(err);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(32, gained.length) }, worker));
      this.opts.onOwnership?.(change);
    });
  }

  /**
   * One beat and re-balance; ticks never overlap. Resolves once the round's takeovers are marked
   * too (the timer's ticks do not wait for that).
   */
  tick(): Promise<unknown> {
    this.ticking = this.ticking.then(async () => {
      if (this.stopped) return;
      try {
        await this.ownership.tick();
      } catch (err) {
        this.opts.onError?.(err);
      }
    });
    return this.settled();
  }

  /**
   * Resolves once the tick under way (if any) is done, takeover markers included: what owned()
   * says then is safe to trade (a symbol held but not yet marked would be fenced).
   */
  async settled(): Promise<void> {
    await this.ticking;
    await this.marking;
  }

  setSymbols(symbols: readonly string[]): Promise<unknown> {
    this.ownership.setSymbols(symbols);
    return this.tick();
  }

  /** Symbols gained and lost since start. */
  leaseChangesTotal(): number {
    return this.ownership.leaseChanges;
  }

  /**
   * Ownership rounds completed since start, and the longest one (ms; a lease lives leaseTtlMs)
   * since start or the last call with `resetLongest`.
   */
  tickStats(resetLongest = false): { ticks: number; longest_ms: number } {
    const out = { ticks: this.ownership.ticks, longest_ms: this.ownership.longestTickMs };
    if (resetLongest) this.ownership.longestTickMs = 0;
    return out;
  }

  /** Bars this node's replica has committed to its cache, and of those, acknowledged once on disk. */
  replicaStats(): { committed: number; acknowledged: number } {
    return { committed: this.replica.replicated, acknowledged: this.replica.acknowledged };
  }

  owns(symbol: string): boolean {
    return this.ownership.owns(symbol);
  }

  owned(): string[] {
    return this.ownership.owned();
  }

  /** Publishes the bars of symbols this node owns (others' bars are theirs to publish). */
  async publishBars(bars: readonly Bar[]): Promise<void> {
    const mine = bars.filter((b) => this.ownership.owns(b.symbol));
    if (mine.length) await this.publisher.publish(mine);
  }

  async status(): Promise<ClusterStatus> {
    return {
      node_id: this.opts.nodeId,
      members: await this.ownership.listMembers(),
      leases: await this.ownership.leaseTable(),
      owned: this.ownership.owned(),
    };
  }

  async metrics(): Promise<{ stream_lag: number; lease_changes: number; fenced_appends: number; bars_published: number; bars_replicated: number }> {
    return {
      stream_lag: await this.replica.lag(),
      lease_changes: this.ownership.leaseChanges,
      fenced_appends: this.fence.fenced,
      bars_published: this.publisher.published,
      bars_replicated: this.replica.replicated,
    };
  }

  /**
   * Stops beating and re-balancing without giving anything up: what a frozen or partitioned node
   * looks like to the others (its leases expire after the TTL). resumeTicks() undoes it. For drills.
   */
  haltTicks(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  resumeTicks(): void {
    if (this.timer || this.stopped) return;
    this.startTimer();
  }

  /**
   * Drops off the network without a word, as a killed process does: no leases given up, no leave.
   * The others take its symbols once its leases expire. For drills and benchmarks.
   */
  async crash(): Promise<void> {
    this.haltTicks();
    this.stopped = true;
    await this.replica?.stop(true);
    await this.data?.nc.close();
    await this.conn?.nc.close();
  }

  async stop(): Promise<void> {
    this.haltTicks();
    await this.ticking.catch(() => undefined);
    await this.marking.catch(() => undefined);
    this.stopped = true;
    await this.replica?.stop();
    await this.ownership?.leave().catch(() => undefined);
    await this.data?.close();
    await this.conn?.close();
  }
}
