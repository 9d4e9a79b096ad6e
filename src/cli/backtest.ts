/**
 * `barkeep backtest`: runs a strategy over cached bars through the live trading code, or sweeps a
 * grid of its parameters on a worker pool. See USAGE, and README.md "Backtesting".
 *
 * Exit codes: 0 done (a sweep also when some combinations failed, which the table shows),
 * 1 the backtest failed (no bars, a strategy that throws, every combination failed), 2 bad arguments.
 */
import { join, resolve } from 'node:path';
import { missingSpans, loadBars } from '../backtest/bars.ts';
import { specDefaults } from '../backtest/defaults.ts';
import { fetchSpans } from '../backtest/fetch.ts';
import { digestLine, headline, metricsTable, writeResults } from '../backtest/output.ts';
import { createPool, defaultWorkers } from '../backtest/pool.ts';
import { runSpec } from '../backtest/run.ts';
import { checkSpec, SpecError, type BacktestSpec } from '../backtest/spec.ts';
import { combinations, GridError, parseGrid, parseValue, runSweep, SORT_KEYS, type GridAxis, type SortKey, type SweepResult } from '../backtest/sweep.ts';
import type { Config } from '../config/schema.ts';
import { isValidSymbol } from '../market/bar.ts';
import { BAR_SIZES, isBarSize } from '../market/bar-size.ts';
import { RealClock } from '../market/clock.ts';
import { actorConfigs } from '../config/actor-configs.ts';
import { TIME_BOUND_HELP, parseTimeBound } from '../storage/bar-query.ts';
import { openStorage, storageExists, storagePath } from '../storage/storage.ts';
import { parseCommandArgs, UsageError } from './args.ts';

export interface BacktestCommandIo {
  config: Config;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Working directory for relative paths (results folder, strategy module). */
  cwd?: string;
}

const USAGE = `usage: barkeep backtest --from TIME [--to TIME] [options]
  --symbols QQQ,SPY          symbols (default trader.symbols)
  --bar-size ${BAR_SIZES.join('|')}   (default trader.bar_size)
  --from, --to               the span; TIME is ${TIME_BOUND_HELP}
                             (--to: a date means through its end; default now)
  --strategy NAME            sma-crossover | mean-reversion (default trader.strategy)
  --strategy-module PATH     your own strategy module (default export (params) => Strategy)
  --param name=value         a strategy parameter (repeat); without any, trader.strategy_params
  --cash N                   starting cash (default trader.paper.starting_cash)
  --slippage-bps N           (default trader.paper.slippage_bps)
  --commission-per-share N   (default trader.paper.commission_per_share; minimum trader.paper.min_commission)
  --warmup N                 bars before --from given to the strategy's warm-up (default 0)
  --stop-loss-pct P          protective exits on every entry, as a bracket (percent of the entry
  --take-profit-pct P        price; default trader.exits); --trailing-stop-pct instead of a fixed
  --trailing-stop-pct P      stop; any of them replaces trader.exits
  --no-exits                 no protective exits, whatever trader.exits says
  --fetch                    fill the spans the cache lacks first, through the collector's source
  --results DIR              where report.json, trades/orders/fills/daily CSV and equity.html go
                             (default results/backtest-<time>)
  --json                     print the report as one JSON object (a sweep: an array) on stdout
 sweeps:
  --grid name=from:to:step   or name=a,b,c; repeat for more parameters; runs every combination
  --workers N                pool threads (default: this machine's cores)
  --sort METRIC              ${SORT_KEYS.join(', ')} (default sharpe)
  --train FRACTION           choose on the first FRACTION of the span (0 < f < 1), test on the rest
Risk limits and allowed sessions come from the config's risk section, as live.`;

interface Parsed {
  spec: BacktestSpec;
  axes: GridAxis[];
  workers: number;
  sort: SortKey;
  train?: number;
  fetch: boolean;
  json: boolean;
  results: string;
}

function num(values: Record<string, unknown>, name: string, min: number, fallback: number): number {
  const text = values[name] as string | undefined;
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`--${name}: ${JSON.stringify(text)} is not a number >= ${min}`);
  return n;
}

function stamp(now: number): string {
  return new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export function parseBacktestArgs(argv: string[], config: Config, now: number, cwd: string): Parsed | 'help' {
  const { values } = parseCommandArgs(argv, {
    symbols: { type: 'string' },
    'bar-size': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    strategy: { type: 'string' },
    'strategy-module': { type: 'string' },
    param: { type: 'string', multiple: true },
    cash: { type: 'string' },
    'slippage-bps': { type: 'string' },
    'commission-per-share': { type: 'string' },
    warmup: { type: 'string' },
    'stop-loss-pct': { type: 'string' },
    'take-profit-pct': { type: 'string' },
    'trailing-stop-pct': { type: 'string' },
    'no-exits': { type: 'boolean' },
    fetch: { type: 'boolean' },
    results: { type: 'string' },
    json: { type: 'boolean' },
    grid: { type: 'string', multiple: true },
    workers: { type: 'string' },
    sort: { type: 'string' },
    train: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  const d = specDefaults(config);
  const symbols =
    values.symbols !== undefined
      ? (values.symbols as string)
          .split(',')
          .map((s) => s.trim().toUpperCase())
          .filter(Boolean)
      : config.trader.symbols;
  if (symbols.length === 0) throw new UsageError('--symbols: give at least one symbol');
  for (const s of symbols) if (!isValidSymbol(s)) throw new UsageError(`--symbols: ${JSON.stringify(s)} is not a symbol (e.g. QQQ or BRK.B)`);
  const barSize = (values['bar-size'] as string | undefined) ?? d.bar_size;
  if (!isBarSize(barSize)) throw new UsageError(`--bar-size: ${JSON.stringify(barSize)} is not one of ${BAR_SIZES.join(', ')}`);
  if (values.from === undefined) throw new UsageError('--from is required (where the backtest starts)');
  const from = parseTimeBound(values.from as string, 'from');
  if (from === undefined) throw new UsageError(`--from: ${JSON.stringify(values.from)} is not ${TIME_BOUND_HELP}`);
  let to = now;
  if (values.to !== undefined) {
    const text = values.to as string;
    const bound = parseTimeBound(text, 'to');
    if (bound === undefined) throw new UsageError(`--to: ${JSON.stringify(text)} is not ${TIME_BOUND_HELP}`);
    to = /^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? bound + 1 : bound;
  }
  if (from >= to) throw new UsageError(`--from: it is not before --to (${new Date(from).toISOString()} >= ${new Date(to).toISOString()})`);

  const module = values['strategy-module'] as string | undefined;
  const strategy = (values.strategy as string | undefined) ?? (module ? 'module' : d.strategy);
  const paramList = (values.param as string[] | undefined) ?? [];
  let params: Record<string, unknown>;
  if (paramList.length > 0) {
    params = {};
    for (const p of paramList) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(p);
      if (!m) throw new UsageError(`--param: ${JSON.stringify(p)} is not name=value`);
      params[m[1]] = parseValue(m[2]);
    }
  } else {
    // The config's parameters belong to the config's strategy.
    params = values.strategy === undefined && !module ? { ...d.params } : {};
  }
  let axes: GridAxis[];
  try {
    axes = ((values.grid as string[] | undefined) ?? []).map(parseGrid);
    combinations(axes);
  } catch (err) {
    if (err instanceof GridError) throw new UsageError(err.message);
    throw err;
  }
  const sort = ((values.sort as string | undefined) ?? 'sharpe') as SortKey;
  if (!SORT_KEYS.includes(sort)) throw new UsageError(`--sort: ${JSON.stringify(values.sort)} is not one of ${SORT_KEYS.join(', ')}`);
  const workers = num(values, 'workers', 1, defaultWorkers());
  if (!Number.isInteger(workers) || workers > 256) throw new UsageError('--workers: a whole number from 1 to 256');
  let train: number | undefined;
  if (values.train !== undefined) {
    train = Number(values.train);
    if (!(train > 0 && train < 1)) throw new UsageError(`--train: ${JSON.stringify(values.train)} is not a fraction between 0 and 1 (e.g. 0.7)`);
    if (axes.length === 0) throw new UsageError('--train: a train/test split needs a sweep (--grid)');
  }

  const exitFlags = ['stop-loss-pct', 'take-profit-pct', 'trailing-stop-pct'] as const;
  let exits: BacktestSpec['exits'] = d.exits ?? null;
  if (values['no-exits']) {
    const given = exitFlags.find((f) => values[f] !== undefined);
    if (given) throw new UsageError(`--no-exits: cannot go with --${given}`);
    exits = null;
  } else if (exitFlags.some((f) => values[f] !== undefined)) {
    exits = {};
    for (const f of exitFlags) if (values[f] !== undefined) (exits as Record<string, number>)[f.replaceAll('-', '_')] = num(values, f, 0, 0);
  }

  let spec: BacktestSpec;
  try {
    spec = checkSpec({
      ...d,
      symbols,
      bar_size: barSize,
      from,
      to,
      strategy,
      strategy_module: module ? resolve(cwd, module) : strategy === d.strategy ? d.strategy_module : null,
      params,
      cash: num(values, 'cash', 0.01, d.cash),
      slippage_bps: num(values, 'slippage-bps', 0, d.slippage_bps),
      commission_per_share: num(values, 'commission-per-share', 0, d.commission_per_share),
      warmup_bars: num(values, 'warmup', 0, 0),
      exits,
    });
  } catch (err) {
    if (err instanceof SpecError && err.field.startsWith('exits.')) {
      // Named as the user gave it: exits.stop_loss_pct is --stop-loss-pct.
      throw new UsageError(`--${err.field.slice('exits.'.length).replaceAll('_', '-')}${err.message.slice(err.field.length)}`);
    }
    if (err instanceof SpecError) throw new UsageError(err.message);
    throw err;
  }
  const results = resolve(cwd, (values.results as string | undefined) ?? join('results', `backtest-${stamp(now)}`));
  return { spec, axes, workers, sort, train, fetch: Boolean(values.fetch), json: Boolean(values.json), results };
}

export async function backtestCommand(argv: string[], io: BacktestCommandIo): Promise<number> {
  const now = new RealClock().now();
  let req: Parsed | 'help';
  try {
    req = parseBacktestArgs(argv, io.config, now, io.cwd ?? process.cwd());
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err.write(`barkeep backtest: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (req === 'help') {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  const { spec } = req;
  const dataDir = storagePath(io.config.data_dir);
  if (!storageExists(dataDir) && !req.fetch) {
    io.err.write(`barkeep backtest: no bar cache at ${dataDir}; run barkeep backfill, or add --fetch\n`);
    return 1;
  }

  // Which spans the cache lacks, per symbol; --fetch fills them first.
  const alwaysOpen = actorConfigs(io.config).trader.alwaysOpen;
  let spans = checkSpans(dataDir, spec, alwaysOpen);
  if (spans.length > 0 && req.fetch) {
    const outcomes = await fetchSpans(io.config, spec.bar_size, spans, io.err, now);
    for (const o of outcomes) if (o.error) io.err.write(`fetch ${o.symbol}: failed: ${o.error}\n`);
    spans = checkSpans(dataDir, spec, alwaysOpen);
  }
  for (const s of spans) {
    io.err.write(`missing: ${s.symbol} has no ${spec.bar_size} bars on ${s.from_date === s.to_date ? s.from_date : `${s.from_date} .. ${s.to_date}`} (${s.days} day${s.days === 1 ? '' : 's'})\n`);
  }
  if (spans.length > 0 && !req.fetch) io.err.write('(add --fetch to fill them from the configured source first)\n');

  if (req.axes.length > 0) return sweep(req, io, dataDir);

  const storage = openStorage({ path: dataDir, sourcePrecedence: io.config.storage.source_precedence });
  try {
    const { report, detail } = await runSpec(spec, storage.bars);
    const files = writeResults(req.results, report, detail);
    if (req.json) {
      io.out.write(`${JSON.stringify({ ...report, results: req.results })}\n`);
    } else {
      io.out.write(`${headline(report)}\n\n${metricsTable(report)}\n\n${digestLine(report, detail)}\n`);
      io.out.write(`results: ${files.find((f) => f.endsWith('equity.html'))} (and report.json, trades.csv, orders.csv, fills.csv, daily.csv)\n`);
    }
    return 0;
  } catch (err) {
    io.err.write(`barkeep backtest: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await storage.close();
  }
}

function checkSpans(dataDir: string, spec: BacktestSpec, alwaysOpen: boolean) {
  if (!storageExists(dataDir)) return spec.symbols.flatMap((symbol) => missingSpans(new Map([[symbol, []]]), spec.from, spec.to, { alwaysOpen }));
  const storage = openStorage({ path: dataDir });
  try {
    const { bars } = loadBars(storage.bars, spec.symbols, spec.bar_size, spec.from, spec.to);
    return missingSpans(bars, spec.from, spec.to, { alwaysOpen });
  } finally {
    void storage.close();
  }
}

async function sweep(req: Parsed, io: BacktestCommandIo, dataDir: string): Promise<number> {
  const pool = createPool(req.workers);
  const tty = Boolean((io.err as { isTTY?: boolean }).isTTY);
  let last = '';
  let result: SweepResult;
  try {
    result = await runSweep({
      pool,
      base: req.spec,
      axes: req.axes,
      source: { dataDir, sourcePrecedence: io.config.storage.source_precedence },
      sort: req.sort,
      train: req.train,
      onProgress(done, total, failed) {
        const width = 30;
        const filled = Math.round((done / total) * width);
        const line = `sweep [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${failed ? ` (${failed} failed)` : ''} on ${pool.workers} worker${pool.workers === 1 ? '' : 's'}`;
        if (line === last) return;
        last = line;
        io.err.write(tty ? `\r\x1b[K${line}${done === total ? '\n' : ''}` : `${line}\n`);
      },
    });
  } finally {
    await pool.close();
  }
  if (!result.best) {
    io.err.write(`barkeep backtest: every combination failed; first: ${result.rows[0]?.error?.message ?? 'none ran'}\n`);
    if (req.json) io.out.write(`${JSON.stringify(result.rows.map(jsonRow))}\n`);
    return 1;
  }
  const files = writeResults(req.results, result.best.report, result.best.detail);
  const sweepCsv = join(req.results, 'sweep.csv');
  const { writeFileSync } = await import('node:fs');
  const names = req.axes.map((a) => a.name);
  writeFileSync(
    sweepCsv,
    `${[...names, 'ok', 'final_equity', 'total_return', 'sharpe', 'sortino', 'max_drawdown', 'trades', 'win_rate', 'digest', 'error'].join(',')}\n${result.rows
      .map((r) =>
        [
          ...names.map((n) => r.params[n]),
          r.ok,
          r.report?.final_equity,
          r.report?.total_return,
          r.report?.sharpe,
          r.report?.sortino,
          r.report?.max_drawdown,
          r.report?.trades,
          r.report?.win_rate,
          r.report?.digest,
          r.error ? JSON.stringify(r.error.message) : '',
        ]
          .map((v) => (v === null || v === undefined ? '' : String(v)))
          .join(','),
      )
      .join('\n')}\n`,
  );
  if (req.json) {
    // With --train, every combination's report is on the train part; the best one's run on the
    // test part comes last, marked split "test".
    const rows: Array<Record<string, unknown>> = result.rows.map((r) => (result.train ? { ...jsonRow(r), split: 'train' } : jsonRow(r)));
    if (result.test) rows.push({ ...result.test.report, ok: true, split: 'test' });
    else if (result.train)
      rows.push({ params: result.rows.find((r) => r.ok)?.params ?? null, ok: false, split: 'test', error: { code: 'BACKTEST_FAILED', message: result.test_error ?? 'the test run failed' } });
    io.out.write(`${JSON.stringify(rows)}\n`);
    return 0;
  }
  io.out.write(`${sweepTable(result, names)}\n\n`);
  if (result.train) io.out.write(`chosen on ${new Date(result.train.from).toISOString()} .. ${new Date(result.train.to).toISOString()} (train); best by ${result.sort}:\n`);
  else io.out.write(`best by ${result.sort}:\n`);
  io.out.write(`${headline(result.best.report)}\n\n${metricsTable(result.best.report)}\n\n${digestLine(result.best.report, result.best.detail)}\n`);
  if (result.test) {
    io.out.write(`\ntest (bars it was not chosen on): ${headline(result.test.report)}\n\n${metricsTable(result.test.report)}\n\n${digestLine(result.test.report, result.test.detail)}\n`);
    writeResults(join(req.results, 'test'), result.test.report, result.test.detail);
  } else if (result.test_error) {
    io.out.write(`\ntest run failed: ${result.test_error}\n`);
  }
  io.out.write(`results: ${files.find((f) => f.endsWith('equity.html'))} (best), ${sweepCsv} (every combination)\n`);
  return 0;
}

function jsonRow(r: SweepResult['rows'][number]): Record<string, unknown> {
  return r.ok ? { ...r.report!, ok: true } : { params: r.params, ok: false, error: r.error };
}

function sweepTable(result: SweepResult, names: string[]): string {
  const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined ? '-' : x.toFixed(d));
  const headers = ['#', ...names, result.sort, 'return', 'sharpe', 'max DD', 'trades', 'digest'];
  const rows = result.rows.map((r, i) => {
    const p = names.map((n) => String(r.params[n]));
    if (!r.ok) return [String(i + 1), ...p, 'failed', '', '', '', '', ''];
    const rep = r.report!;
    return [String(i + 1), ...p, f(rep[result.sort] as number | null, 4), `${f(rep.total_return * 100)}%`, f(rep.sharpe), `${f(rep.max_drawdown * 100)}%`, String(rep.trades), rep.digest];
  });
  const cells = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const failures = result.rows.flatMap((r, i) => (r.ok ? [] : [`#${i + 1} ${names.map((n) => `${n}=${String(r.params[n])}`).join(' ')} failed: ${r.error!.message}`]));
  return [...cells.map((r) => r.map((c, i) => (c ?? '').padStart(widths[i])).join('  ')), ...(failures.length ? ['', ...failures] : [])].join('\n');
}
