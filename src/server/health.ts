/**
 * GET /health: 503 only when an actor is not running (starting, restarting, failed: the process
 * cannot do its job), with the reasons naming the actors. With every actor running it is 200, and
 * `status: "degraded"` with the reasons when the collector is running but its bars are not being
 * kept current:
 * - the collection cycle under way has run longer than two collection intervals (a vendor that
 *   stalls or drip-feeds holds it until its deadline);
 * - a cycle overran its deadline and no cycle has completed since (`cycles_overrun` in
 *   /data-collector/status);
 * - the collector has not answered a status request for 5 s.
 * A degraded engine still serves and trades on what it has, so a load balancer or a service
 * manager must not take it out or restart it for that (503 would); an operator or a monitor reads
 * the reasons.
 */
import { performance } from 'node:perf_hooks';
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
  /** A status request unanswered this long makes the collector degraded. Default 5000 ms. */
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

/**
 * The /health answer: its HTTP status and body. It never waits for the collector: each check asks
 * for a fresh status in the background and judges the latest one it has (a check right after the
 * start has none yet, and says nothing about the collector), so /health stays as fast as the
 * supervisor's own view, whatever the collector's thread is busy with.
 */
export class HealthCheck {
  private readonly memory: OverrunMemory = { overruns: 0, cyclesAtOverrun: null };
  private latest: CollectorStatus | null = null;
  /** performance.now() of the status request still unanswered, if any. */
  private askedAt: number | null = null;

  constructor(
    private readonly sup: Supervisor,
    private readonly opts: HealthOptions | null,
  ) {}

  check(): { code: 200 | 503; body: HealthBody } {
    const h = this.sup.health();
    if (!h.ok) {
      this.latest = null;
      return { code: 503, body: { status: 'degraded', reasons: h.reasons } };
    }
    if (!this.opts) return { code: 200, body: { status: 'ok', reasons: [] } };
    const reasons: string[] = [];
    const silentMs = this.askedAt === null ? 0 : performance.now() - this.askedAt;
    if (silentMs > (this.opts.answerWithinMs ?? 5000)) reasons.push(`collector: has not answered a status request for ${Math.round(silentMs / 1000)} s`);
    if (this.latest) reasons.push(...collectorLag(this.latest, this.opts.now(), this.opts.collectIntervalMs, this.memory));
    this.ask();
    return { code: 200, body: { status: reasons.length ? 'degraded' : 'ok', reasons } };
  }

  /** Asks the collector for its status unless a request is under way. */
  private ask(): void {
    if (this.askedAt !== null) return;
    this.askedAt = performance.now();
    this.sup
      .handle<CollectorRequests>('collector')
      .call('status', {})
      .then(
        (s) => {
          this.latest = s;
        },
        () => {
          // Stopped running meanwhile: the next check answers 503.
          this.latest = null;
        },
      )
      .finally(() => {
        this.askedAt = null;
      });
  }
}
