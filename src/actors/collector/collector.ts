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
 * - Only complete bars are asked for: a cycle's span ends at the start of the bar still forming
 *   (New York midnight for 1Day), so a vendor that returns the forming bar cannot put a partial
 *   bar in the cache, and coverage never claims a bar that was not complete when it was fetched.
 * - A bar identical to the cached one (same source and values) is not written again: the refetch
 *   window would otherwise rewrite ~15 bars per symbol per cycle and tell the arbiter about them.
 * - Each bar is checked against the store's rules before the write, so one bad bar a source let
 *   through is skipped and counted instead of making the store refuse the whole batch every cycle.
 * - A source that is down (5xx, timeout, 429 after its retries) ends the cycle's pass over the
 *   symbols: the rest would only spend the rate budget on the same failure. A failover collects
 *   again from the next source in the same cycle.
 * - stop and shutdown abort the requests under way (a rate-limit wait can be a minute long).
 */
import { BAR_SOURCE_CODE, type Bar } from '../../market/bar.ts';
import { barSizeMs, floorToBar, type BarSize } from '../../market/bar-size.ts';
import type { MarketCalendar } from '../../market/calendar.ts';
import type { Clock, TimerHandle } from '../../market/clock.ts';
import { SourceError, type HistoricalBarSource, type SourceName } from '../../sources/types.ts';
import { createBarView } from '../../storage/bar-codec.ts';
import type { BarStore } from '../../storage/bar-store.ts';
import { validateBar } from '../../storage/bar-validation.ts';
import type { CheckpointStore } from '../../storage/types.ts';
import type { Logger } from '../../runtime/log.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import type { BackfillJob, CollectorStatus } from './protocol.ts';
import { isTradingHours, nextCycleAt, validateScheduleConfig, type ScheduleConfig } from './schedule.ts';

const CHECKPOINT_KEY = 'collector';
const DAY_MS = 86_400_000;
const MAX_ERRORS = 20;
/** Bars per backfill request: one Massive page (50 000 max), ~14 days of 1Min, few requests on a 5/min plan. */
const BACKFILL_CHUNK_BARS = 20_000;

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

/** How one pass over the symbols with one source went. */
interface Pass {
  ok: number;
  refused?: SourceError;
  lastError?: unknown;
  aborted: boolean;
}

/** Failures that are the source's, not the symbol's: the rest of the pass would fail the same way. */
const SOURCE_DOWN = new Set(['UNAVAILABLE', 'TIMEOUT', 'RATE_LIMITED']);

export class Collector {
  private running = false;
  /** False until resume() or start(): a collector that never took the checkpoint never writes it. */
  private attached = false;
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
  private cycleAbort: AbortController | null = null;
  private backfillAbort: AbortController | null = null;
  private backfilling: Promise<void> | null = null;
  private cycles = 0;
  private barsWritten = 0;
  private invalidBars = 0;
  private readonly writtenBySource: Record<string, number> = {};
  private readonly errorsByCode: Record<string, number> = {};
  private failovers = 0;
  private errors: CollectorStatus['errors'] = [];
  private backfillJob: BackfillJob | null = null;
  private readonly refetchWindowMs: number;
  private readonly stored = createBarView();

  constructor(private readonly o: CollectorOptions) {
    if (o.sources.length === 0) throw new Error('the collector needs at least one source');
    // Refused here, at the actor's start, rather than in a timer where it would crash the thread.
    validateScheduleConfig(o.schedule);
    this.refetchWindowMs = o.refetchWindowMs ?? 15 * 60_000;
  }

  /** Takes the state back from the checkpoint and resumes collecting if it was running. */
  async resume(autostart: { symbols: string[]; barSize: BarSize } | null): Promise<void> {
    this.attached = true;
    const cp = this.o.checkpoints.get<Checkpoint>(CHECKPOINT_KEY);
    if (cp) {
      this.coveredUntil = cp.coveredUntil ?? {};
      this.lastCollection = cp.lastCollection ?? {};
      this.active = Math.min(cp.active ?? 0, this.o.sources.length - 1);
      if (this.active > 0) this.failoverReason = 'resumed on the fallback source after a restart';
      // Set before start(): a start with another bar size drops the coverage.
      this.symbols = cp.symbols;
      this.barSize = cp.barSize;
      if (cp.running) await this.start(cp.symbols, cp.barSize, true);
      return;
    }
    if (autostart) await this.start(autostart.symbols, autostart.barSize);
  }

  /** `resumed`: the checkpoint already says exactly this, so a restart serves without writing it again. */
  async start(symbols: string[], barSize: BarSize, resumed = false): Promise<CollectorStatus> {
    this.attached = true;
    this.cancelTimer();
    if (barSize !== this.barSize) this.coveredUntil = {};
    this.symbols = [...new Set(symbols)];
    this.barSize = barSize;
    this.running = true;
    if (!resumed) await this.checkpoint();
    this.o.log.info({ symbols: this.symbols, bar_size: barSize, source: this.source.name }, 'collector started');
    // The first cycle runs at once: it backfills what the cache lacks.
    this.schedule(this.o.clock.now());
    return this.status();
  }

  async stop(): Promise<CollectorStatus> {
    this.running = false;
    this.cancelTimer();
    this.cycleAbort?.abort(new SourceError(this.source.name, 'ABORTED', 'collector stopped'));
    await this.cycling;
    await this.checkpoint();
    this.o.log.info('collector stopped');
    return this.status();
  }

  /** Process shutdown: ends the cycle and backfill under way and keeps the running intent for the next start. */
  async shutdown(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.cancelTimer();
    const why = new SourceError(this.source.name, 'ABORTED', 'collector shutting down');
    this.cycleAbort?.abort(why);
    this.backfillAbort?.abort(why);
    await Promise.all([this.cycling, this.backfilling]);
    this.running = wasRunning;
    await this.checkpoint();
    this.running = false;
  }

  /** Runs one cycle now and waits for it (joins the one under way, if any). */
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
      this.nextAt = null;
      // A cycle still under way (collectNow, a start during a cycle) ran with the symbols of its
      // time: let it finish, then run the one this timer is for.
      void (async () => {
        await this.cycling;
        if (this.running) await this.runCycle();
        if (this.running && !this.timer) this.schedule(this.nextCycle());
      })();
    }, at - this.o.clock.now());
  }

  private nextCycle(): number {
    const alwaysOpen = this.o.alwaysOpen && this.source.name === 'sim';
    return nextCycleAt(this.o.clock.now(), this.o.calendar, this.o.schedule, { alwaysOpen }).at;
  }

  /** Never rejects: a cycle's failure is logged, and the schedule goes on. */
  private runCycle(): Promise<void> {
    if (this.cycling) return this.cycling;
    const abort = new AbortController();
    this.cycleAbort = abort;
    this.cycling = this.cycle(abort.signal)
      .catch((err: unknown) => {
        this.recordError(this.source.name, err);
      })
      .finally(() => {
        this.cycling = null;
        this.cycleAbort = null;
      });
    return this.cycling;
  }

  private async cycle(signal: AbortSignal): Promise<void> {
    if (this.symbols.length === 0) return;
    await this.maybeReturnToPreferred(signal);
    for (;;) {
      const source = this.source;
      const pass = await this.collectAll(source, signal);
      if (pass.aborted) break;
      if (pass.ok > 0) {
        this.failures = 0;
        break;
      }
      this.failures++;
      const refused = pass.refused;
      const why = refused
        ? `${source.name} refused the credentials (${refused.code}${refused.status ? ` ${refused.status}` : ''}: ${refused.vendorMessage ?? refused.message})`
        : `${source.name} failed ${this.failures} cycle(s) in a row (${(pass.lastError as Error)?.message ?? 'unknown error'})`;
      if (!(refused || this.failures >= this.o.failoverAfterFailures) || this.active >= this.o.sources.length - 1) break;
      this.switchTo(this.active + 1, why);
      // Collect from the next source now rather than one cycle later.
    }
    this.cycles++;
    await this.checkpoint();
  }

  private async collectAll(source: HistoricalBarSource, signal: AbortSignal): Promise<Pass> {
    const now = this.o.clock.now();
    const pass: Pass = { ok: 0, aborted: false };
    for (const symbol of this.symbols) {
      if (signal.aborted) {
        pass.aborted = true;
        break;
      }
      try {
        await this.collectSymbol(source, symbol, now, signal);
        pass.ok++;
      } catch (err) {
        if (signal.aborted) {
          pass.aborted = true;
          break;
        }
        pass.lastError = err;
        this.recordError(source.name, err, symbol);
        const code = (err as SourceError)?.code;
        if (err instanceof SourceError && (code === 'AUTH' || code === 'FORBIDDEN')) {
          pass.refused = err;
          break;
        }
        if (err instanceof SourceError && SOURCE_DOWN.has(code)) break;
      }
    }
    return pass;
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
  private async maybeReturnToPreferred(signal: AbortSignal): Promise<void> {
    if (this.active === 0) return;
    const now = this.o.clock.now();
    if (now - this.lastPreferredProbe < this.o.retryPreferredAfterMs) return;
    this.lastPreferredProbe = now;
    const preferred = this.o.sources[0];
    const symbol = this.symbols[0];
    try {
      const to = this.barOpenAt(now);
      await preferred.fetchBars(symbol, this.barSize, to - 10 * barSizeMs(this.barSize), to, signal);
      this.switchTo(0, `${preferred.name} answered again`);
    } catch (err) {
      if (!signal.aborted) this.recordError(preferred.name, err, symbol);
    }
  }

  /** Start of the bar still forming at `now`: every bar before it is complete. */
  private barOpenAt(now: number, size: BarSize = this.barSize): number {
    return size === '1Day' ? this.o.calendar.dayStart(now) : floorToBar(now, size);
  }

  private async collectSymbol(source: HistoricalBarSource, symbol: string, now: number, signal: AbortSignal): Promise<void> {
    const open = this.barOpenAt(now);
    const covered = this.coveredUntil[symbol] ?? this.initialCoverage(symbol, now);
    const from = Math.max(covered - this.refetchWindowMs, now - this.o.backfillDays * DAY_MS);
    const bars = from < open ? await source.fetchBars(symbol, this.barSize, from, open, signal) : [];
    await this.write(source.name, symbol, this.barSize, bars);
    this.coveredUntil[symbol] = Math.max(covered, open);
    this.lastCollection[symbol] = this.o.clock.now();
  }

  /** Where a symbol's collection starts: after its newest cached bar, or backfill_days back. */
  private initialCoverage(symbol: string, now: number): number {
    const latest = this.o.store.latest(symbol, this.barSize);
    return latest ? latest.start + barSizeMs(this.barSize) : now - this.o.backfillDays * DAY_MS;
  }

  /** Writes what is new or changed; returns how many bars the store wrote. */
  private async write(source: SourceName, symbol: string, barSize: BarSize, bars: Bar[]): Promise<number> {
    if (bars.length === 0) return 0;
    for (const b of bars) this.writtenBySource[b.source] = (this.writtenBySource[b.source] ?? 0) + 1;
    const fresh: Bar[] = [];
    let invalid = 0;
    let problem: string | undefined;
    for (const b of bars) {
      try {
        validateBar(b);
      } catch (err) {
        invalid++;
        problem ??= `${new Date(b.start).toISOString()}: ${(err as Error).message}`;
        continue;
      }
      if (!this.sameAsCached(b)) fresh.push(b);
    }
    if (invalid > 0) {
      this.invalidBars += invalid;
      this.recordError(source, Object.assign(new Error(`${invalid} bar(s) skipped as invalid (first: ${problem})`), { code: 'INVALID_BAR' }), symbol);
    }
    if (fresh.length === 0) return 0;
    const result = await this.o.store.putMany(fresh);
    this.barsWritten += result.written;
    this.o.onWritten(
      barSize,
      symbol,
      fresh.map((b) => b.start),
    );
    return result.written;
  }

  /** The cache already holds this very bar: same source, same values. */
  private sameAsCached(b: Bar): boolean {
    const v = this.stored;
    if (!this.o.store.readInto(b.symbol, b.barSize, b.start, v)) return false;
    return (
      v.sourceCode === BAR_SOURCE_CODE[b.source] &&
      v.open === b.open &&
      v.high === b.high &&
      v.low === b.low &&
      v.close === b.close &&
      v.volume === b.volume &&
      v.trades === b.trades &&
      (v.vwap === b.vwap || (Number.isNaN(v.vwap) && Number.isNaN(b.vwap)))
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
   * background; `backfillStatus` reports it. Only complete bars are asked for: `to` is cut back to
   * the start of the bar still forming.
   */
  startBackfill(symbol: string, barSize: BarSize, from: number, to: number): BackfillJob {
    if (this.backfillJob?.state === 'running') {
      throw Object.assign(new Error(`a backfill of ${this.backfillJob.symbol} is running`), { code: 'CONFLICT' });
    }
    to = Math.max(from, Math.min(to, this.barOpenAt(this.o.clock.now(), barSize)));
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
    const abort = new AbortController();
    this.backfillAbort = abort;
    const chunk = Math.max(barSizeMs(barSize) * BACKFILL_CHUNK_BARS, DAY_MS);
    const source = this.source;
    this.backfilling = (async () => {
      try {
        for (let t = from; t < to; t += chunk) {
          const end = Math.min(t + chunk, to);
          const bars = await source.fetchBars(symbol, barSize, t, end, abort.signal);
          job.bars_written += await this.write(source.name, symbol, barSize, bars);
          job.done_until = new Date(end).toISOString();
          job.progress = (end - from) / (to - from);
        }
        job.progress = 1;
        job.state = 'done';
      } catch (err) {
        job.state = 'failed';
        const e = err as SourceError;
        job.error = e?.vendorMessage && !e.message.includes(e.vendorMessage) ? `${e.message} (${e.vendorMessage})` : String(e?.message ?? err);
        this.recordError(source.name, err, symbol);
      } finally {
        if (this.backfillAbort === abort) {
          this.backfillAbort = null;
          this.backfilling = null;
        }
      }
    })();
    return { ...job };
  }

  backfillStatus(): BackfillJob | null {
    return this.backfillJob && { ...this.backfillJob };
  }

  private async checkpoint(): Promise<void> {
    if (!this.attached) return;
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
      { name: 'barkeep_collector_invalid_bars_total', help: 'Bars a source returned that the cache would refuse, skipped', type: 'counter', labels: {}, value: this.invalidBars },
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
