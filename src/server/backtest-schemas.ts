/**
 * The HTTP API's backtest shapes (src/server/routes/backtests.ts): the job, its report and metrics,
 * the list. Split from schemas.ts by area; the same compile-time check holds the job schema to the
 * JobView the server sends.
 */
import { z } from 'zod';
import type { JobView } from './backtest-jobs.ts';
import { holds, iso, isoOrNull } from './schemas.ts';

const num = z.number();
const numOrNull = z.number().nullable();
export const metricsSchema = z
  .object({
    final_equity: num,
    pnl: num,
    total_return: num,
    cagr: numOrNull,
    sharpe: numOrNull,
    sortino: numOrNull,
    max_drawdown: num,
    max_drawdown_duration_days: num,
    win_rate: numOrNull,
    profit_factor: numOrNull,
    exposure: num,
    turnover: num,
    commissions: num,
    trades: num,
    open_trades: num,
    fills: num,
  })
  .meta({ id: 'BacktestMetrics' });

const reportFields = {
  strategy: z.string(),
  params: z.record(z.string(), z.unknown()),
  exits: z.record(z.string(), num).nullable().meta({ description: 'Protective exits put on every entry as a bracket (stop_loss_pct, take_profit_pct, trailing_stop_pct), or null' }),
  calendar: z.enum(['nyse', 'none']).meta({ description: 'What ended day orders: the NYSE session close, or none (the 24/7 simulated market)' }),
  symbols: z.array(z.string()),
  bar_size: z.string(),
  from: iso,
  to: iso,
  starting_cash: num,
  bars: num,
  orders: num,
  refused: num,
  digest: z.string().meta({ description: 'sha256 of the fills, first 16 hex digits: equal exactly when two runs traded alike' }),
  per_symbol: z.record(z.string(), metricsSchema),
  equity_curve: z.array(z.object({ time: iso, equity: num })).meta({ description: 'At most 1000 points, evenly thinned' }),
  final_positions: z.record(z.string(), z.object({ qty: num, avg_price: num, last_price: numOrNull })),
};
export const backtestReportSchema = metricsSchema.extend(reportFields).meta({ id: 'BacktestReport' });
const tradeSchema = z.object({
  symbol: z.string(),
  direction: z.enum(['long', 'short']),
  entry_time: iso,
  exit_time: isoOrNull,
  qty: num,
  entry_price: num,
  exit_price: numOrNull,
  pnl: num,
  return: num,
  commission: num,
  open: z.boolean(),
});
const jobError = z.object({ code: z.string(), message: z.string() }).nullable();
const jobFields = {
  id: z.string(),
  kind: z.enum(['backtest', 'sweep']),
  state: z.enum(['running', 'done', 'failed']),
  created_at: iso,
  finished_at: isoOrNull,
  progress: z.object({ done: num, total: num, fraction: num }),
  request: z.object({
    symbols: z.array(z.string()),
    bar_size: z.string(),
    from: iso,
    to: iso,
    strategy: z.string(),
    params: z.record(z.string(), z.unknown()),
    grid: z.record(z.string(), z.array(z.union([z.number(), z.string(), z.boolean()]))).nullable(),
    sort: z.string().nullable(),
    train: numOrNull,
  }),
  error: jobError,
};
export const backtestJobSchema = z
  .object({
    ...jobFields,
    report: backtestReportSchema
      .extend({ trade_list: z.array(tradeSchema) })
      .nullable()
      .meta({ description: "The report (a sweep: the best combination's)" }),
    test_report: backtestReportSchema.nullable().meta({ description: 'A sweep with a train/test split: the best combination on the test part' }),
    combinations: z
      .array(z.object({ params: z.record(z.string(), z.unknown()), ok: z.boolean(), metrics: backtestReportSchema.partial().nullable(), error: jobError }))
      .nullable()
      .meta({ description: 'A sweep: every combination, best first' }),
  })
  .meta({ id: 'Backtest' });
export const backtestSummarySchema = z
  .object({
    ...jobFields,
    metrics: z.object({ final_equity: num, total_return: num, sharpe: numOrNull, max_drawdown: num, trades: num, digest: z.string(), params: z.record(z.string(), z.unknown()) }).nullable(),
  })
  .meta({ id: 'BacktestSummary' });
export const backtestListSchema = z.object({ backtests: z.array(backtestSummarySchema) });
export const backtestIdParams = z.object({ id: z.string().meta({ description: 'The id POST /backtests answered with' }) });

holds<JobView extends z.output<typeof backtestJobSchema> ? true : false>();
