/**
 * The data collector: on the NYSE schedule, fetches each symbol's new bars from the active source,
 * writes them to the cache, and tells the arbiter which keys it wrote.
 *
 * Design decisions:
 * - Coverage, not the newest bar, says what is collected: per symbol the checkpoint keeps
 *   `coveredUntil`, the end of the last span the source answered in full. Each cycle asks for
 *   [coveredUntil - refetchWindow, now): one request per symbol whatever the span, so an outage of
 *   any length is filled by the first good cycle after it, and bars the vendor published late or
 *   corrected (Massive re-sends minute bars for 15 minutes) are picked up. A minute the source has
 *   no bar for is not a gap; a hole inside a span it covered is refetched by the window.
 * - Sources: Massive when its key is set, else Alpaca, else the simulated market. With both
 *   vendors configured, repeated failures (at once for a refused key) move collection to the next
 *   one; the preferred one is probed every `retryPreferredAfterMs` and resumes when it answers.
 *   The simulated market is never a fallback for a vendor: its bars would pollute a real cache.
 * - A cycle never overlaps the previous one: a slow cycle (rate limit) delays the next.
 */
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, type BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { SourceError, type HistoricalBarSource, type SourceName } from '../../sources/types.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BackfillJob, CollectorStatus } from './protocol.ts';
import { isTradingHours, nextCycleAt, type ScheduleConfig } from './schedule.ts';

const CHECKPOINT_KEY = 'collector';
const DAY_MS = 86_400_000;
const MAX_ERRORS = 20;

export interface CollectorOptions {
  sources: HistoricalBarSource[];
  store: BarStore;
  checkpoints: CheckpointStore;
  calendar: MarketCalendar;
  clock: Clock;
  log: Logger;
  schedule: ScheduleConfig;
  backfillDays: number;
  failoverAfterFailures: number;
  retryPreferredAfterMs: number;
  /** How far behind coveredUntil each cycle re-asks, for late and corrected bars. */
  refetchWindowMs?: number;
  /** The simulated 24/7 market: every minute is collected as in regular hours. */
  alwaysOpen: boolean;
  /** Told after every write which keys are in the cache now. */
  onWritten(barSize: BarSize, symbol: string, starts: number[]): void;
}

interface Checkpoint {
  running: boolean;
  symbols: string[];
  barSize: BarSize;
  coveredUntil: Record<string, number>;
  lastCollection: Record<string, number>;
  active: number;
}


export class Collector {
  private running = false;
  private symbols: string[] = [];
  private barSize: BarSize = '1Min';
  private coveredUntil: Record<string, number> = {};
  private lastCollection: Record<string, number> = {};
  private active = 0;
  private failures = 0;
  private failoverReason: string | null = null;
  private lastPreferredProbe = 0;
  private timer: TimerHandle | undefined;
  private nextAt: number | null = null;
  private cycling: Promise<void> | null = null;
  private cycles = 0;
  private barsWritten = 0;
  private readonly writtenBySource: Record<string, number> = {};
  private readonly errorsByCode: Record<string, number> = {};
  private failovers = 0;
  private errors: CollectorStatus['errors'] = [];
  private backfillJob: BackfillJob | null = null;
  private readonly refetchWindowMs: number;

  constructor(private readonly o: CollectorOptions) {
    if (o.sources.length === 0) throw new Error('the collector needs at least one source');
    this.refetchWindowMs = o.refetchWindowMs ?? 15 * 60_000;
  }

  /** Takes the state back from the checkpoint and resumes collecting if it was running. */
  async resume(autostart: { symbols: string[]; barSize: BarSize } | null): Promise<void> {
    const cp = this.o.checkpoints.get<Checkpoint>(CHECKPOINT_KEY);
    if (cp) {
      this.coveredUntil = cp.coveredUntil ?? {};
      this.lastCollection = cp.lastCollection ?? {};
      this.active = Math.min(cp.active ?? 0, this.o.sources.length - 1);
      if (this.active > 0) this.failoverReason = 'resumed on the fallback source after a restart';
      if (cp.running) {
        await this.start(cp.symbols, cp.barSize);
        return;
      }
      this.symbols = cp.symbols;
      this.barSize = cp.barSize;
    }
    if (!cp && autostart) await this.start(autostart.symbols, autostart.barSize);
  }

  async start(symbols: string[], barSize: BarSize): Promise<CollectorStatus> {
    this.cancelTimer();
    if (barSize !== this.barSize) this.coveredUntil = {};
    this.symbols = [...new Set(symbols)];
    this.barSize = barSize;
    this.running = true;
    await this.checkpoint();
    this.o.log.info({ symbols: this.symbols, bar_size: barSize, source: this.source.name }, 'collector started');
    // The first cycle runs at once: it backfills what the cache lacks.
    this.schedule(this.o.clock.now());
    return this.status();
  }

  async stop(): Promise<CollectorStatus> {
    this.running = false;
    this.cancelTimer();
    await this.cycling;
    await this.checkpoint();
    this.o.log.info('collector stopped');
    return this.status();
  }

  /** Process shutdown: finishes the cycle under way and keeps the running intent for the next start. */
  async shutdown(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.cancelTimer();
    await this.cycling;
    this.running = wasRunning;
    await this.checkpoint();
    this.running = false;
  }

  /** Runs one cycle now and waits for it. */
  async collectNow(): Promise<CollectorStatus> {
    await this.runCycle();
    return this.status();
  }

  private get source(): HistoricalBarSource {
    return this.o.sources[this.active];
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.nextAt = null;
  }

  private schedule(at: number): void {
    this.cancelTimer();
    if (!this.running) return;
    this.nextAt = at;
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined;
      void this.runCycle().finally(() => {
        if (this.running && !this.timer) this.schedule(this.nextCycle());
      });
    }, at - this.o.clock.now());
  }

  private nextCycle(): number {
    const alwaysOpen = this.o.alwaysOpen && this.source.name === 'sim';
    return nextCycleAt(this.o.clock.now(), this.o.calendar, this.o.schedule, { alwaysOpen }).at;
  }

  private runCycle(): Promise<void> {
    if (this.cycling) return this.cycling;
    this.cycling = this.cycle().finally(() => {
      this.cycling = null;
    });
    return this.cycling;
  }

  private async cycle(): Promise<void> {
    if (this.symbols.length === 0) return;
    await this.maybeReturnToPreferred();
    const source = this.source;
    const now = this.o.clock.now();
    let ok = 0;
    let refused: SourceError | undefined;
    let lastError: unknown;
    for (const symbol of this.symbols) {
      try {
        await this.collectSymbol(source, symbol, now);
        ok++;
      } catch (err) {
        lastError = err;
        this.recordError(source.name, err, symbol);
        if (err instanceof SourceError && (err.code === 'AUTH' || err.code === 'FORBIDDEN')) {
          refused = err;
          break;
        }
      }
    }
    this.cycles++;
    await this.checkpoint();
    if (ok > 0) {
      this.failures = 0;
      return;
    }
    this.failures++;
    const why = refused
      ? `${source.name} refused the credentials (${refused.code}${refused.status ? ` ${refused.status}` : ''}: ${refused.vendorMessage ?? refused.message})`
      : `${source.name} failed ${this.failures} cycle(s) in a row (${(lastError as Error)?.message ?? 'unknown error'})`;
    if ((refused || this.failures >= this.o.failoverAfterFailures) && this.active < this.o.sources.length - 1) {
      this.switchTo(this.active + 1, why);
    }
  }

  private switchTo(index: number, reason: string): void {
    const from = this.source.name;
    this.active = index;
    this.failures = 0;
    this.failovers++;
    this.failoverReason = index === 0 ? null : reason;
    this.lastPreferredProbe = this.o.clock.now();
    this.o.log.warn({ from, to: this.source.name, reason }, index === 0 ? 'collector back on its preferred source' : 'collector failed over');
  }

  /** While failed over, probes the preferred source now and then; moves back when it answers. */
  private async maybeReturnToPreferred(): Promise<void> {
    if (this.active === 0) return;
    const now = this.o.clock.now();
    if (now - this.lastPreferredProbe < this.o.retryPreferredAfterMs) return;
    this.lastPreferredProbe = now;
    const preferred = this.o.sources[0];
    const symbol = this.symbols[0];
    try {
      await preferred.fetchBars(symbol, this.barSize, now - 10 * barSizeMs(this.barSize), now);
      this.switchTo(0, `${preferred.name} answered again`);
    } catch (err) {
      this.recordError(preferred.name, err, symbol);
    }
  }

  private async collectSymbol(source: HistoricalBarSource, symbol: string, now: number): Promise<void> {
    const size = barSizeMs(this.barSize);
    const covered = this.coveredUntil[symbol] ?? this.initialCoverage(symbol, now);
    const from = Math.max(covered - this.refetchWindowMs, now - this.o.backfillDays * DAY_MS);
    const bars = await source.fetchBars(symbol, this.barSize, from, now);
    await this.write(symbol, bars);
    // Only complete bars are covered: the bar still forming at `now` is asked for again.
    this.coveredUntil[symbol] = Math.max(covered, now - (now % size));
    this.lastCollection[symbol] = this.o.clock.now();
  }

  /** Where a symbol's collection starts: after its newest cached bar, or backfill_days back. */
  private initialCoverage(symbol: string, now: number): number {
    const latest = this.o.store.latest(symbol, this.barSize);
    return latest ? latest.start + barSizeMs(this.barSize) : now - this.o.backfillDays * DAY_MS;
  }

  private async write(symbol: string, bars: Bar[]): Promise<void> {
    if (bars.length === 0) return;
    const result = await this.o.store.putMany(bars);
    this.barsWritten += result.written;
    for (const b of bars) this.writtenBySource[b.source] = (this.writtenBySource[b.source] ?? 0) + 1;
    this.o.onWritten(
      this.barSize,
      symbol,
      bars.map((b) => b.start),
    );
  }

  private recordError(source: SourceName, err: unknown, symbol?: string): void {
    const e = err as SourceError;
    const code = e?.code ?? 'ERROR';
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    const message = e?.vendorMessage ? `${e.message} (${e.vendorMessage})` : String(e?.message ?? err);
    this.errors.unshift({
      at: new Date(this.o.clock.now()).toISOString(),
      source,
      ...(symbol ? { symbol } : {}),
      code,
      ...(e?.status ? { status: e.status } : {}),
      message,
    });
    this.errors.length = Math.min(this.errors.length, MAX_ERRORS);
    this.o.log.warn({ source, symbol, code, status: e?.status, message }, 'collection failed');
  }

  /**
   * Fills the cache for one symbol over [from, to), in chunks so progress can be shown. Runs in the
   * background; `backfillStatus` reports it.
   */
  startBackfill(symbol: string, barSize: BarSize, from: number, to: number): BackfillJob {
    if (this.backfillJob?.state === 'running') {
      throw Object.assign(new Error(`a backfill of ${this.backfillJob.symbol} is running`), { code: 'CONFLICT' });
    }
    const job: BackfillJob = {
      symbol,
      bar_size: barSize,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      state: 'running',
      done_until: new Date(from).toISOString(),
      progress: 0,
      bars_written: 0,
      error: null,
    };
    this.backfillJob = job;
    const chunk = Math.max(barSizeMs(barSize) * 5000, DAY_MS);
    void (async () => {
      try {
        for (let t = from; t < to; t += chunk) {
          const end = Math.min(t + chunk, to);
          const bars = await this.source.fetchBars(symbol, barSize, t, end);
          if (bars.length) {
            const r = await this.o.store.putMany(bars);
            job.bars_written += r.written;
            this.barsWritten += r.written;
            this.o.onWritten(
              barSize,
              symbol,
              bars.map((b) => b.start),
            );
          }
          job.done_until = new Date(end).toISOString();
          job.progress = (end - from) / (to - from);
        }
        job.state = 'done';
      } catch (err) {
        job.state = 'failed';
        job.error = (err as Error).message;
        this.recordError(this.source.name, err, symbol);
      }
    })();
    return job;
  }

  backfillStatus(): BackfillJob | null {
    return this.backfillJob;
  }

  private async checkpoint(): Promise<void> {
    const cp: Checkpoint = {
      running: this.running,
      symbols: this.symbols,
      barSize: this.barSize,
      coveredUntil: this.coveredUntil,
      lastCollection: this.lastCollection,
      active: this.active,
    };
    await this.o.checkpoints.put(CHECKPOINT_KEY, cp);
  }

  status(): CollectorStatus {
    const now = this.o.clock.now();
    const sources: CollectorStatus['sources'] = {};
    for (const s of this.o.sources) sources[s.name] = s.stats();
    return {
      is_running: this.running,
      symbols: this.symbols,
      bar_size: this.barSize,
      api_type: this.source.apiType,
      source: this.source.name,
      preferred_source: this.o.sources[0].name,
      failover_reason: this.failoverReason,
      last_collection_times: Object.fromEntries(
        Object.entries(this.lastCollection).map(([s, t]) => [s, new Date(t).toISOString()]),
      ),
      is_trading_hours: this.o.alwaysOpen && this.source.name === 'sim' ? true : isTradingHours(now, this.o.calendar),
      next_cycle_at: this.nextAt === null ? null : new Date(this.nextAt).toISOString(),
      cycles: this.cycles,
      bars_written: this.barsWritten,
      errors: this.errors,
      sources,
    };
  }

  metrics(): MetricSample[] {
    const out: MetricSample[] = [
      { name: 'barkeep_collector_cycles_total', help: 'Collection cycles run', type: 'counter', labels: {}, value: this.cycles },
      { name: 'barkeep_collector_failovers_total', help: 'Switches between sources', type: 'counter', labels: {}, value: this.failovers },
    ];
    for (const [source, n] of Object.entries(this.writtenBySource)) {
      out.push({ name: 'barkeep_collector_bars_received_total', help: 'Bars received from each source', type: 'counter', labels: { source }, value: n });
    }
    for (const [code, n] of Object.entries(this.errorsByCode)) {
      out.push({ name: 'barkeep_collector_errors_total', help: 'Collection errors by code', type: 'counter', labels: { code }, value: n });
    }
    for (const s of this.o.sources) {
      const st = s.stats();
      const labels = { source: s.name };
      out.push(
        { name: 'barkeep_source_requests_total', help: 'Requests sent to a source', type: 'counter', labels, value: st.requests },
        { name: 'barkeep_source_retries_total', help: 'Requests retried', type: 'counter', labels, value: st.retries },
        { name: 'barkeep_source_rate_limited_total', help: 'Answers of 429', type: 'counter', labels, value: st.rateLimited },
        { name: 'barkeep_source_malformed_total', help: 'Malformed bars or bodies skipped', type: 'counter', labels, value: st.malformed },
        { name: 'barkeep_source_rate_limit_remaining', help: 'Requests the limiter allows now', type: 'gauge', labels, value: st.rateLimitRemaining },
      );
    }
    const store = this.o.store.stats();
    out.push(
      { name: 'barkeep_cache_writes_total', help: 'Bars written to the cache by the collector', type: 'counter', labels: {}, value: store.writes },
      { name: 'barkeep_cache_corrections_total', help: 'Bars replaced by a correction from the same source', type: 'counter', labels: {}, value: store.corrections },
      { name: 'barkeep_cache_shadowed_total', help: 'Bars kept out by a higher-precedence source', type: 'counter', labels: {}, value: store.shadowed },
      { name: 'barkeep_cache_source_divergences_total', help: 'Bars on which two sources disagreed on OHLC', type: 'counter', labels: {}, value: store.divergent },
      { name: 'barkeep_cache_rejected_total', help: 'Bars refused as invalid', type: 'counter', labels: {}, value: store.rejected },
      { name: 'barkeep_cache_pruned_total', help: 'Bars pruned by retention', type: 'counter', labels: {}, value: store.pruned },
    );
    return out;
  }
}
