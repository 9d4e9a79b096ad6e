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
 *
 * The parts: rest-pass.ts (one pass over the symbols), cycle-runner.ts (when cycles run),
 * stream-ingest.ts (the stream), bar-writer.ts (checks, dedup, write, announce), source-selector.ts
 * (failover), collector-errors.ts, rate-budget.ts; this file ties them to the checkpoint and status.
 */
import { wireSourceStats } from './wire-stats.ts';
import type { CollectorCheckpoint as Checkpoint, CollectorOptions } from './collector-options.ts';
import type { Bar } from '../../market/bar.ts';
import { barSizeMs, floorToBar, type BarSize } from '../../market/bar-size.ts';
import { SourceError, type HistoricalBarSource, type SourceName } from '../../sources/types.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import { Backfiller } from './backfill.ts';
import { BarWriter } from './bar-writer.ts';
import { collectorMetrics } from './collector-metrics.ts';
import { CollectorError, type BackfillJob, type CollectorStatus } from './protocol.ts';
import { isTradingHours, nextCycleAt, validateScheduleConfig } from './schedule.ts';
import { SourceSelector } from './source-selector.ts';
import { collectAll, type PassHost } from './rest-pass.ts';
import { CycleRunner } from './cycle-runner.ts';
import { CollectorErrors } from './collector-errors.ts';
import { logRateBudget, sourceRateBudget, type RateBudget } from './rate-budget.ts';
import { StreamIngest } from './stream-ingest.ts';

const CHECKPOINT_KEY = 'collector';

export type { CollectorOptions } from './collector-options.ts';

export class Collector {
  private running = false;
  /** False until resume() or start(): a collector that never took the checkpoint never writes it. */
  private attached = false;
  private symbols: string[] = [];
  private barSize: BarSize = '1Min';
  private coveredUntil: Record<string, number> = {};
  private lastCollection: Record<string, number> = {};
  private readonly selector: SourceSelector;
  private readonly runner: CycleRunner;
  private readonly backfiller = new Backfiller();
  private readonly writer: BarWriter;
  private cycles = 0;
  private readonly errors: CollectorErrors;
  /** The REST pass's view of this collector (rest-pass.ts). */
  private readonly passHost: PassHost;
  private readonly refetchWindowMs: number;
  private readonly ingest: StreamIngest;
  private readonly reconcileMs: number;
  private lastCycleStartedAt = -Infinity;

  constructor(private readonly o: CollectorOptions) {
    if (o.sources.length === 0) throw new Error('the collector needs at least one source');
    // Refused here, at the actor's start, rather than in a timer where it would crash the thread.
    validateScheduleConfig(o.schedule);
    this.refetchWindowMs = o.refetchWindowMs ?? 15 * 60_000;
    this.selector = new SourceSelector(
      o.sources.map((s) => s.name),
      o.failoverAfterFailures,
      o.retryPreferredAfterMs,
    );
    this.writer = new BarWriter(o.store, o.onWritten);
    this.reconcileMs = o.reconcileIntervalMs ?? 5 * 60_000;
    this.errors = new CollectorErrors(o.clock, o.log, o.onFailure);
    this.runner = new CycleRunner({
      clock: o.clock,
      log: o.log,
      deadlineMs: o.cycleDeadlineMs,
      running: () => this.running,
      sourceName: () => this.source.name,
      body: (signal) => this.cycle(signal),
      next: () => this.nextCycle(),
      recordError: (source, err) => this.recordError(source, err),
      done: () => this.o.onCycle?.(this.status()),
    });
    const self = this;
    this.passHost = {
      get symbols() {
        return self.symbols;
      },
      get barSize() {
        return self.barSize;
      },
      get coveredUntil() {
        return self.coveredUntil;
      },
      get lastCollection() {
        return self.lastCollection;
      },
      refetchWindowMs: this.refetchWindowMs,
      backfillDays: o.backfillDays,
      clock: o.clock,
      store: o.store,
      barOpenAt: (now) => this.barOpenAt(now),
      observeRest: (source, bars) => this.ingest.observeRest(source, bars),
      write: (source, symbol, barSize, bars) => this.write(source, symbol, barSize, bars),
      recordError: (source, err, symbol) => this.recordError(source, err, symbol),
    };
    this.ingest = new StreamIngest({
      clock: o.clock,
      log: o.log,
      calendar: o.calendar,
      streams: o.streams ?? {},
      stallAfterMs: o.streamStallMs,
      write: (source, bars) => this.writeStreamed(source, bars),
      fill: (since) => this.fillBefore(since),
      refused: (source, err) => this.streamRefused(source, err),
      report: (source, err) => this.recordError(source, err),
      modeChanged: () => this.runner.reschedule(),
    });
  }

  /** Takes the state back from the checkpoint and resumes collecting if it was running. */
  async resume(autostart: { symbols: string[]; barSize: BarSize } | null, configWins = false): Promise<void> {
    this.attached = true;
    const cp = this.o.checkpoints.get<Checkpoint>(CHECKPOINT_KEY);
    if (cp) {
      this.coveredUntil = cp.coveredUntil ?? {};
      this.lastCollection = cp.lastCollection ?? {};
      this.selector.restore(cp.active ?? 0);
      // Set before start(): a start with another bar size drops the coverage.
      this.symbols = cp.symbols;
      this.barSize = cp.barSize;
      // At a process start the config wins over the saved symbols and bar size (coverage is kept).
      if (configWins && autostart) {
        const same = cp.barSize === autostart.barSize && cp.symbols.join() === autostart.symbols.join();
        if (!same) this.o.log.info({ saved: { symbols: cp.symbols, bar_size: cp.barSize } }, 'the config wins over the saved collector settings');
        await this.start(autostart.symbols, autostart.barSize, same && cp.running);
        return;
      }
      if (cp.running) await this.start(cp.symbols, cp.barSize, true);
      return;
    }
    if (autostart) await this.start(autostart.symbols, autostart.barSize);
  }

  /** `resumed`: the checkpoint already says exactly this, so a restart serves without writing it again. */
  async start(symbols: string[], barSize: BarSize, resumed = false): Promise<CollectorStatus> {
    this.attached = true;
    this.runner.cancel();
    if (barSize !== this.barSize) this.coveredUntil = {};
    this.symbols = [...new Set(symbols)];
    this.barSize = barSize;
    this.running = true;
    if (!resumed) await this.checkpoint();
    this.o.log.info({ symbols: this.symbols, bar_size: barSize, source: this.source.name }, 'collector started');
    this.ingest.follow(this.source.name, this.symbols, barSize);
    logRateBudget(this.o.log, this.source.name, this.symbols.length, this.rateBudget());
    // The first cycle runs at once: it backfills what the cache lacks.
    this.runner.schedule(this.o.clock.now());
    return this.status();
  }

  async stop(): Promise<CollectorStatus> {
    this.running = false;
    this.runner.cancel();
    this.runner.abort(new SourceError(this.source.name, 'ABORTED', 'collector stopped'));
    await this.runner.cycling;
    await this.ingest.pause();
    await this.checkpoint();
    this.o.log.info('collector stopped');
    return this.status();
  }

  /** Process shutdown: ends the cycle and backfill under way and keeps the running intent for the next start. */
  async shutdown(): Promise<void> {
    const wasRunning = this.running;
    this.running = false;
    this.runner.cancel();
    const why = new SourceError(this.source.name, 'ABORTED', 'collector shutting down');
    this.runner.abort(why);
    await Promise.all([this.runner.cycling, this.backfiller.abort(why), this.ingest.close()]);
    this.running = wasRunning;
    await this.checkpoint();
    this.running = false;
  }

  /** Runs one cycle now and waits for it (joins the one under way, if any). */
  async collectNow(): Promise<CollectorStatus> {
    await this.runner.run();
    return this.status();
  }

  private get source(): HistoricalBarSource {
    return this.o.sources[this.selector.active];
  }

  private nextCycle(): number {
    const alwaysOpen = this.o.alwaysOpen && this.source.name === 'sim';
    const now = this.o.clock.now();
    const next = (t: number) => nextCycleAt(t, this.o.calendar, this.o.schedule, { alwaysOpen }).at;
    const step = this.o.schedule.marketHoursIntervalMs;
    // A live stream brings the bars: REST only reconciles, on its slower cadence.
    if (this.ingest.mode === 'stream') return next(Math.max(now, this.lastCycleStartedAt + this.reconcileMs - step));
    // More symbols than the plan's requests per minute: cycles spaced so each one fits.
    const budget = this.rateBudget();
    if (budget?.stretched) return next(Math.max(now, this.lastCycleStartedAt + budget.interval_ms - step));
    return next(now);
  }

  /** What the REST cadence costs on the active source against its rate limit (null: the simulated market). */
  private rateBudget(): RateBudget | null {
    return sourceRateBudget(this.source, this.symbols.length, this.ingest.mode === 'stream' ? this.reconcileMs : this.o.schedule.marketHoursIntervalMs);
  }

  /** Streamed bars, through the same checks and the same message to the arbiter as REST bars: one transaction per batch. */
  private async writeStreamed(source: SourceName, bars: Bar[]): Promise<void> {
    if (!this.running || source !== this.source.name) return;
    await this.writer.writeBatch(bars, (invalid, problem, symbol) => this.recordInvalid(source, symbol, invalid, problem));
  }

  /** A stream came up at `since`: a REST cycle that started after its bar opened fills the gap. */
  private async fillBefore(since: number): Promise<void> {
    await this.runner.cycling;
    if (this.running && this.lastCycleStartedAt < this.barOpenAt(since)) await this.runner.run();
  }

  /** The stream refused the key: fail over exactly as a REST refusal does. */
  private streamRefused(source: SourceName, err: SourceError): void {
    this.recordError(source, err);
    const active = this.selector.active;
    if (source !== this.source.name || active >= this.o.sources.length - 1) return;
    const sw = this.selector.switchTo(active + 1, `${source} refused the credentials on its stream (${err.vendorMessage ?? err.message})`, this.o.clock.now());
    this.logSwitch(sw.from, sw.to, sw.reason);
    if (this.running) this.runner.schedule(this.o.clock.now());
  }

  private async cycle(signal: AbortSignal): Promise<void> {
    if (this.symbols.length === 0) return;
    this.lastCycleStartedAt = this.o.clock.now();
    await this.maybeReturnToPreferred(signal);
    for (;;) {
      const pass = await collectAll(this.passHost, this.source, signal);
      const sw = this.selector.afterPass(pass, this.o.clock.now());
      if (!sw) break;
      this.logSwitch(sw.from, sw.to, sw.reason);
      // Collect from the next source now rather than one cycle later.
    }
    this.cycles++;
    await this.checkpoint();
  }

  /** After every switch of source: logs it, and moves the stream to the new source. */
  private logSwitch(from: number, to: number, reason: string): void {
    if (this.running) this.ingest.follow(this.source.name, this.symbols, this.barSize);
    this.o.log.warn({ from: this.o.sources[from].name, to: this.o.sources[to].name, reason }, to === 0 ? 'collector back on its preferred source' : 'collector failed over');
  }

  /** While failed over, probes the preferred source now and then; moves back when it answers. */
  private async maybeReturnToPreferred(signal: AbortSignal): Promise<void> {
    const now = this.o.clock.now();
    if (!this.selector.probeDue(now)) return;
    const preferred = this.o.sources[0];
    const symbol = this.symbols[0];
    try {
      const to = this.barOpenAt(now);
      await preferred.fetchBars(symbol, this.barSize, to - 10 * barSizeMs(this.barSize), to, signal);
      const sw = this.selector.switchTo(0, `${preferred.name} answered again`, this.o.clock.now());
      this.logSwitch(sw.from, sw.to, sw.reason);
    } catch (err) {
      if (!signal.aborted) this.recordError(preferred.name, err, symbol);
    }
  }

  /** Start of the bar still forming at `now`: every bar before it is complete. */
  private barOpenAt(now: number, size: BarSize = this.barSize): number {
    return size === '1Day' ? this.o.calendar.dayStart(now) : floorToBar(now, size);
  }

  /** Writes what is new or changed; returns how many bars the store wrote. */
  private write(source: SourceName, symbol: string, barSize: BarSize, bars: Bar[]): Promise<number> {
    return this.writer.write(symbol, barSize, bars, (invalid, problem) => this.recordInvalid(source, symbol, invalid, problem));
  }

  private recordInvalid(source: SourceName, symbol: string, invalid: number, problem: string): void {
    this.recordError(source, new CollectorError('INVALID_BAR', `${invalid} bar(s) skipped as invalid (first: ${problem})`), symbol);
  }

  private recordError(source: SourceName, err: unknown, symbol?: string): void {
    this.errors.record(source, err, symbol);
  }

  /**
   * Fills the cache for one symbol over [from, to), in chunks so progress can be shown. Runs in the
   * background; `backfillStatus` reports it. Only complete bars are asked for: `to` is cut back to
   * the start of the bar still forming.
   */
  startBackfill(symbol: string, barSize: BarSize, from: number, to: number): BackfillJob {
    const source = this.source;
    return this.backfiller.start({
      source,
      symbol,
      barSize,
      from,
      to: Math.max(from, Math.min(to, this.barOpenAt(this.o.clock.now(), barSize))),
      write: (bars) => this.write(source.name, symbol, barSize, bars),
      recordError: (err) => this.recordError(source.name, err, symbol),
    });
  }

  backfillStatus(): BackfillJob | null {
    return this.backfiller.status();
  }

  private async checkpoint(): Promise<void> {
    if (!this.attached) return;
    const cp: Checkpoint = {
      running: this.running,
      symbols: this.symbols,
      barSize: this.barSize,
      coveredUntil: this.coveredUntil,
      lastCollection: this.lastCollection,
      active: this.selector.active,
    };
    await this.o.checkpoints.put(CHECKPOINT_KEY, cp);
  }

  status(): CollectorStatus {
    const now = this.o.clock.now();
    const sources: CollectorStatus['sources'] = {};
    for (const s of this.o.sources) sources[s.name] = wireSourceStats(s.stats());
    return {
      is_running: this.running,
      symbols: this.symbols,
      bar_size: this.barSize,
      api_type: this.source.apiType,
      source: this.source.name,
      preferred_source: this.o.sources[0].name,
      failover_reason: this.selector.failoverReason,
      last_collection_times: Object.fromEntries(Object.entries(this.lastCollection).map(([s, t]) => [s, new Date(t).toISOString()])),
      is_trading_hours: this.o.alwaysOpen && this.source.name === 'sim' ? true : isTradingHours(now, this.o.calendar),
      next_cycle_at: this.runner.nextAt === null ? null : new Date(this.runner.nextAt).toISOString(),
      cycles: this.cycles,
      cycles_overrun: this.runner.overruns,
      cycle_started_at: this.runner.cycleStartedAt === null ? null : new Date(this.runner.cycleStartedAt).toISOString(),
      bars_written: this.writer.barsWritten,
      errors: this.errors.list,
      sources,
      mode: this.ingest.mode,
      streams: this.ingest.health(),
      rate_budget: this.rateBudget(),
    };
  }

  metrics(): MetricSample[] {
    return [...this.ingest.metrics(), ...this.collectorMetrics()];
  }

  private collectorMetrics(): MetricSample[] {
    return collectorMetrics(
      {
        cycles: this.cycles,
        cyclesOverrun: this.runner.overruns,
        failovers: this.selector.failovers,
        invalidBars: this.writer.invalidBars,
        receivedBySource: this.writer.receivedBySource,
        errorsByCode: this.errors.byCode,
      },
      this.o.sources,
      this.o.store,
    );
  }
}
