/**
 * GET /health: 503 only when an actor is not running (starting, restarting, failed: the process
 * cannot do its job), with the reasons naming the actors. With every actor running it is 200, and
 * `status: "degraded"` with the reasons when the collector is running but its bars are not being
 * kept current:
 * - the collection cycle under way has run longer than two collection intervals (a vendor that
 *   stalls or drip-feeds holds it until its deadline);
 * - a cycle overran its deadline and no cycle has completed since (`cycles_overrun` in
 *   /data-collector/status);
 * - the collector did not answer the check within a second.
 * A degraded engine still serves and trades on what it has, so a load balancer or a service
 * manager must not take it out or restart it for that (503 would); an operator or a monitor reads
 * the reasons.
 */
import type { CollectorRequests, CollectorStatus } from '../actors/collector/protocol.ts';
import type { Supervisor } from '../runtime/supervisor.ts';

export interface HealthBody {
  status: 'ok' | 'degraded';
  reasons: string[];
}

export interface HealthOptions {
  /** The collector's market-hours interval (collector.market_hours_interval_s), ms. */
  collectIntervalMs: number;
  /** The engine's clock (the collector's times are on it). */
  now: () => number;
  /** How long the check waits for the collector's status. Default 1000 ms. */
  answerWithinMs?: number;
}

/** What the check remembers between two calls: the overruns it has seen, and the cycles done then. */
export interface OverrunMemory {
  overruns: number;
  cyclesAtOverrun: number | null;
}

/** Why a running collector is not keeping the bars current (empty: it is). Pure, on the given time. */
export function collectorLag(s: CollectorStatus, now: number, collectIntervalMs: number, memory: OverrunMemory): string[] {
  const reasons: string[] = [];
  // A restarted collector counts from zero again.
  if (s.cycles_overrun < memory.overruns) {
    memory.overruns = s.cycles_overrun;
    memory.cyclesAtOverrun = null;
  }
  if (s.cycles_overrun > memory.overruns) {
    memory.overruns = s.cycles_overrun;
    memory.cyclesAtOverrun = s.cycles;
  }
  if (memory.cyclesAtOverrun !== null && s.cycles > memory.cyclesAtOverrun) memory.cyclesAtOverrun = null;
  if (!s.is_running) return reasons;
  // A cadence stretched to fit the vendor's rate limit is the interval the cycles are meant to keep.
  const interval = Math.max(collectIntervalMs, s.rate_budget?.interval_ms ?? 0);
  const started = s.cycle_started_at ? Date.parse(s.cycle_started_at) : Number.NaN;
  if (Number.isFinite(started) && now - started > 2 * interval) {
    reasons.push(
      `collector: the collection cycle under way started ${Math.round((now - started) / 1000)} s ago, longer than two collection intervals (${Math.round((2 * interval) / 1000)} s); bars may be stale`,
    );
  }
  if (memory.cyclesAtOverrun !== null) {
    reasons.push(`collector: a collection cycle overran its deadline (${s.cycles_overrun} so far) and none has completed since; bars may be stale`);
  }
  return reasons;
}

/** The /health answer: its HTTP status and body. */
export class HealthCheck {
  private readonly memory: OverrunMemory = { overruns: 0, cyclesAtOverrun: null };

  constructor(
    private readonly sup: Supervisor,
    private readonly opts: HealthOptions | null,
  ) {}

  async check(): Promise<{ code: 200 | 503; body: HealthBody }> {
    const h = this.sup.health();
    if (!h.ok) return { code: 503, body: { status: 'degraded', reasons: h.reasons } };
    if (!this.opts) return { code: 200, body: { status: 'ok', reasons: [] } };
    const reasons = await this.collectorReasons(this.opts);
    return { code: 200, body: { status: reasons.length ? 'degraded' : 'ok', reasons } };
  }

  private async collectorReasons(o: HealthOptions): Promise<string[]> {
    const within = o.answerWithinMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), within);
    });
    try {
      const s = await Promise.race([this.sup.handle<CollectorRequests>('collector').call('status', {}), late]);
      if (s === 'late') return [`collector: did not answer within ${within} ms`];
      return collectorLag(s, o.now(), o.collectIntervalMs, this.memory);
    } catch (err) {
      // It stopped running between the two looks: the next check answers 503.
      return [`collector: ${(err as Error).message}`];
    } finally {
      clearTimeout(timer);
    }
  }
}
