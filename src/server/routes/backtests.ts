/**
 * Backtests over HTTP.
 *   POST /backtests        the options of `barkeep backtest` as JSON; 202 with the job (its `id`).
 *                          A body with `grid` is a sweep. Validated here: a 400 names the field.
 *   GET  /backtests        every job still kept, newest first, without their reports' lists.
 *   GET  /backtests/{id}   progress, then the report: metrics, `equity_curve` ([{time, equity}],
 *                          at most 1000 points), `per_symbol`, `trade_list`; a sweep adds
 *                          `combinations` (best first) and with `train`, `test_report`.
 * The runs happen on the backtest pool (server/backtest-jobs.ts), never on an actor's thread.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { riskConfigSchema } from '../../actors/trader/risk.ts';
import { exitsSchema } from '../../config/schema.ts';
import { checkSpec, type BacktestSpec } from '../../backtest/spec.ts';
import { GridError, parseGrid, combinations, SORT_KEYS, type GridAxis } from '../../backtest/sweep.ts';
import { isValidSymbol } from '../../market/bar.ts';
import { BAR_SIZES } from '../../market/bar-size.ts';
import { TIME_BOUND_HELP, parseTimeBound } from '../../storage/bar-query.ts';
import { BacktestJobError, type BacktestJobs, type JobView } from '../backtest-jobs.ts';
import { badRequest, fromZod, HttpError } from '../errors.ts';

export interface BacktestRouteDeps {
  jobs: BacktestJobs;
  /** The config's trader, paper broker and risk settings (src/backtest/defaults.ts). */
  defaults: Omit<BacktestSpec, 'symbols' | 'from' | 'to'>;
  symbols: string[];
  now: () => number;
}

function timeBound(edge: 'from' | 'to') {
  return z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const ms = parseTimeBound(v, edge);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not ${TIME_BOUND_HELP}` });
      return z.NEVER;
    }
    // A date's `to` means through its end; the span's end is exclusive.
    return edge === 'to' && /^\d{4}-\d{2}-\d{2}$/.test(v.trim()) ? ms + 1 : ms;
  });
}

const gridValue = z.union([z.string().min(1), z.array(z.union([z.number(), z.string(), z.boolean()])).min(1)]);

export const backtestBody = z
  .object({
    symbols: z.array(z.string().refine(isValidSymbol, 'not a ticker symbol (e.g. QQQ, BRK.B)')).min(1).max(100).optional(),
    bar_size: z.enum(BAR_SIZES).optional(),
    from: timeBound('from'),
    to: timeBound('to').optional(),
    strategy: z.string().min(1).optional(),
    strategy_module: z.string().min(1).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    cash: z.number().positive().finite().optional(),
    slippage_bps: z.number().min(0).max(10_000).optional(),
    commission_per_share: z.number().min(0).finite().optional(),
    min_commission: z.number().min(0).finite().optional(),
    warmup_bars: z.number().int().min(0).max(100_000).optional(),
    risk: riskConfigSchema.partial().optional(),
    grid: z.record(z.string(), gridValue).optional(),
    sort: z.enum(SORT_KEYS).optional(),
    train: z.number().gt(0).lt(1).optional(),
    /** Protective exits on every entry (default trader.exits; null: none). */
    exits: exitsSchema.nullable().optional(),
    /** What ends day orders: nyse (the session close) or none (24/7); default from the config. */
    calendar: z.enum(['nyse', 'none']).optional(),
  })
  .strict();

function summary(j: JobView) {
  const r = j.report;
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    created_at: j.created_at,
    finished_at: j.finished_at,
    progress: j.progress,
    request: j.request,
    error: j.error,
    metrics: r ? { final_equity: r.final_equity, total_return: r.total_return, sharpe: r.sharpe, max_drawdown: r.max_drawdown, trades: r.trades, digest: r.digest, params: r.params } : null,
  };
}

export function registerBacktestRoutes(app: FastifyInstance, deps: BacktestRouteDeps): void {
  app.post('/backtests', async (req, reply) => {
    const parsed = backtestBody.safeParse(req.body ?? {});
    if (!parsed.success) throw fromZod(parsed.error);
    const b = parsed.data;
    const d = deps.defaults;
    let axes: GridAxis[] = [];
    try {
      axes = Object.entries(b.grid ?? {}).map(([name, v]) => (typeof v === 'string' ? parseGrid(`${name}=${v}`) : parseGrid(`${name}=${v.join(',')}`)));
      combinations(axes);
    } catch (err) {
      if (err instanceof GridError) throw badRequest('grid', `grid: ${err.message.replace(/^--grid /, '')}`);
      throw err;
    }
    if (b.train !== undefined && axes.length === 0) throw badRequest('train', 'train: a train/test split needs a sweep (grid)');
    const ownStrategy = b.strategy !== undefined || b.strategy_module !== undefined;
    let spec: BacktestSpec;
    try {
      spec = checkSpec({
        ...d,
        symbols: b.symbols ?? deps.symbols,
        bar_size: b.bar_size ?? d.bar_size,
        from: b.from,
        to: b.to ?? deps.now(),
        strategy: b.strategy ?? (b.strategy_module ? 'module' : d.strategy),
        strategy_module: b.strategy_module ?? (ownStrategy ? null : d.strategy_module),
        params: b.params ?? (ownStrategy ? {} : d.params),
        cash: b.cash ?? d.cash,
        slippage_bps: b.slippage_bps ?? d.slippage_bps,
        commission_per_share: b.commission_per_share ?? d.commission_per_share,
        min_commission: b.min_commission ?? d.min_commission,
        warmup_bars: b.warmup_bars ?? d.warmup_bars,
        risk: { ...d.risk, ...b.risk },
        exits: b.exits === undefined ? d.exits : b.exits,
        calendar: b.calendar ?? d.calendar,
      });
    } catch (err) {
      const e = err as { field?: string; message?: string };
      if (e?.field) throw badRequest(e.field, e.message ?? 'bad request');
      throw err;
    }
    let job: JobView;
    try {
      job = deps.jobs.start({ spec, axes, sort: b.sort ?? 'sharpe', train: b.train });
    } catch (err) {
      if (err instanceof BacktestJobError && err.code === 'BUSY') throw new HttpError(429, 'busy', err.message);
      if (err instanceof BacktestJobError && err.code === 'CLOSING') throw new HttpError(503, 'closing', err.message);
      throw err;
    }
    return reply.code(202).header('location', `/backtests/${job.id}`).send(summary(job));
  });

  app.get('/backtests', async () => ({ backtests: deps.jobs.list().map(summary) }));

  app.get<{ Params: { id: string } }>('/backtests/:id', async (req) => {
    const job = deps.jobs.get(req.params.id);
    if (!job) throw new HttpError(404, 'not_found', `no backtest ${JSON.stringify(req.params.id)}`, 'id');
    return job;
  });
}
