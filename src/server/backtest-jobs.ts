/**
 * Backtests requested over HTTP: each is a job that runs on the backtest pool (piscina worker
 * threads, src/backtest/pool.ts), never on an actor's thread or the server's event loop, so live
 * trading is not slowed by it. Jobs live in memory (a restart forgets them); the newest
 * MAX_FINISHED finished jobs are kept.
 *
 * The pool starts with the first job; its size is one thread less than the machine's cores (at
 * least one), which leaves a core to the actors.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import type { BacktestPool } from '../backtest/pool.ts';
import type { BacktestReport, TradeRow } from '../backtest/report.ts';
import type { BacktestSpec, BarSourceSpec } from '../backtest/spec.ts';
import { type GridAxis, runSweep, type SortKey } from '../backtest/sweep.ts';
import { BarkeepError } from '../errors.ts';

/** Why a job was not started (`CLOSING`, `BUSY`) or ended failed (`BACKTEST_ALL_FAILED`). */
export class BacktestJobError extends BarkeepError<'CLOSING' | 'BUSY' | 'BACKTEST_ALL_FAILED'> {}

export type JobState = 'running' | 'done' | 'failed';

export interface JobRequest {
  spec: BacktestSpec;
  axes: GridAxis[];
  sort: SortKey;
  train?: number;
}

export interface JobView {
  id: string;
  kind: 'backtest' | 'sweep';
  state: JobState;
  created_at: string;
  finished_at: string | null;
  progress: { done: number; total: number; fraction: number };
  request: {
    symbols: string[];
    bar_size: string;
    from: string;
    to: string;
    strategy: string;
    params: Record<string, unknown>;
    grid: Record<string, Array<number | string | boolean>> | null;
    sort: SortKey | null;
    train: number | null;
  };
  error: { code: string; message: string } | null;
  /** The report (a sweep: the best combination's), with metrics and equity_curve points. */
  report: (BacktestReport & { trade_list: TradeRow[] }) | null;
  /** A sweep with a train/test split: the best combination on the test part. */
  test_report: BacktestReport | null;
  /** A sweep: every combination, best first (metrics only). */
  combinations: Array<{ params: Record<string, unknown>; ok: boolean; metrics: Partial<BacktestReport> | null; error: { code: string; message: string } | null }> | null;
}

const MAX_FINISHED = 200;
const MAX_RUNNING = 32;
const MAX_TRADES = 1000;

export class BacktestJobs {
  private readonly jobs = new Map<string, JobView>();
  /** Loaded (piscina) and started with the first job: a server nobody asks for a backtest never pays for it. */
  private pool: Promise<BacktestPool> | undefined;
  private seq = 0;
  private closed = false;

  constructor(
    private readonly source: BarSourceSpec,
    private readonly workers = Math.max(1, availableParallelism() - 1),
    private readonly now: () => number = Date.now,
  ) {}

  get running(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.state === 'running') n++;
    return n;
  }

  /** Starts a job; returns its view at once. Throws when the server is closing or too many jobs run. */
  start(req: JobRequest): JobView {
    if (this.closed) throw new BacktestJobError('CLOSING', 'the server is stopping');
    if (this.running >= MAX_RUNNING) throw new BacktestJobError('BUSY', `${MAX_RUNNING} backtests are running already; try again when one has finished`);
    const workers = this.workers;
    this.pool ??= import('../backtest/pool.ts').then((m) => m.createPool(workers));
    const pool = this.pool;
    const id = `bt-${(++this.seq).toString().padStart(4, '0')}-${Math.random().toString(36).slice(2, 8)}`;
    const s = req.spec;
    const job: JobView = {
      id,
      kind: req.axes.length > 0 ? 'sweep' : 'backtest',
      state: 'running',
      created_at: new Date(this.now()).toISOString(),
      finished_at: null,
      progress: { done: 0, total: 0, fraction: 0 },
      request: {
        symbols: s.symbols,
        bar_size: s.bar_size,
        from: new Date(s.from).toISOString(),
        to: new Date(s.to).toISOString(),
        strategy: s.strategy,
        params: s.params,
        grid: req.axes.length > 0 ? Object.fromEntries(req.axes.map((a) => [a.name, a.values])) : null,
        sort: req.axes.length > 0 ? req.sort : null,
        train: req.train ?? null,
      },
      error: null,
      report: null,
      test_report: null,
      combinations: null,
    };
    this.jobs.set(id, job);
    const work = pool.then((p) => (job.kind === 'sweep' ? this.sweep(job, req, p) : this.single(job, s, p)));
    work.then(
      () => this.finish(job, 'done'),
      (err: unknown) => {
        const e = err as { code?: unknown; message?: unknown };
        job.error = { code: typeof e?.code === 'string' ? e.code : 'BACKTEST_FAILED', message: String(e?.message ?? err) };
        this.finish(job, 'failed');
      },
    );
    return job;
  }

  get(id: string): JobView | undefined {
    return this.jobs.get(id);
  }

  /** Newest first. */
  list(): JobView[] {
    return [...this.jobs.values()].reverse();
  }

  async close(): Promise<void> {
    this.closed = true;
    await (await this.pool?.catch(() => undefined))?.close();
  }

  private progress(job: JobView, done: number, total: number): void {
    job.progress = { done, total, fraction: total > 0 ? Math.round((done / total) * 1e4) / 1e4 : 0 };
  }

  private async single(job: JobView, spec: BacktestSpec, pool: BacktestPool): Promise<void> {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: { done: number; total: number }) => this.progress(job, m.done, m.total));
    port1.unref();
    try {
      const r = await pool.run({ spec, source: this.source, detail: true, progress: port2 });
      job.report = { ...r.report, trade_list: r.detail!.trades.slice(0, MAX_TRADES) };
      this.progress(job, r.report.bars, r.report.bars);
    } finally {
      port1.close();
    }
  }

  private async sweep(job: JobView, req: JobRequest, pool: BacktestPool): Promise<void> {
    const result = await runSweep({
      pool,
      base: req.spec,
      axes: req.axes,
      source: this.source,
      sort: req.sort,
      train: req.train,
      onProgress: (done, total) => this.progress(job, done, total),
    });
    job.combinations = result.rows.map((r) => ({
      params: r.params,
      ok: r.ok,
      metrics: r.report ? (({ equity_curve: _e, per_symbol: _p, final_positions: _f, ...m }) => m)(r.report) : null,
      error: r.error ?? null,
    }));
    if (!result.best) throw new BacktestJobError('BACKTEST_ALL_FAILED', `every combination failed; first: ${result.rows[0]?.error?.message ?? 'none ran'}`);
    job.report = { ...result.best.report, trade_list: result.best.detail.trades.slice(0, MAX_TRADES) };
    job.test_report = result.test?.report ?? null;
  }

  private finish(job: JobView, state: JobState): void {
    job.state = state;
    job.finished_at = new Date(this.now()).toISOString();
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (let i = 0; i < finished.length - MAX_FINISHED; i++) this.jobs.delete(finished[i].id);
  }
}
