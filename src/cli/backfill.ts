/**
 * `barkeep backfill SYMBOL --from T [--to T] [--bar-size 1Min]`: fills the bar cache for one symbol
 * from the configured source (Massive, else Alpaca, else the simulated market), with a progress
 * bar on a terminal and plain progress lines otherwise.
 *
 * It starts only the collector actor, in its worker thread, through a Supervisor, and drives it by
 * its protocol (`backfill`, then `backfillStatus` every 200 ms). That collector neither resumes the
 * server's collection from the checkpoint nor writes the checkpoint (`resume: false`), so running
 * this next to `barkeep serve` is safe: both write the same LMDB environment, which serializes them.
 *
 * Exit codes: 0 done, 1 the backfill or the collector failed, 2 bad arguments, 130 interrupted.
 */
import type { BackfillJob, CollectorConfig, CollectorRequests, CollectorStatus } from '../actors/collector/protocol.ts';
import type { Config } from '../config/schema.ts';
import { BAR_SIZES, type BarSize } from '../market/bar-size.ts';
import { RealClock } from '../market/clock.ts';
import { FIRST_MODELLED_YEAR } from '../market/calendar.ts';
import { createLogger } from '../runtime/log.ts';
import { type ActorHandle, Supervisor } from '../runtime/supervisor.ts';
import { actorConfigs } from '../config/actor-configs.ts';
import { TIME_BOUND_HELP, parseTimeBound } from '../storage/bar-query.ts';
import { parseCommandArgs, symbolAndBarSize, UsageError } from './args.ts';

export interface BackfillCommandIo {
  config: Config;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const FIRST_MODELLED_MS = Date.UTC(FIRST_MODELLED_YEAR, 0, 1, 5);

const USAGE = `usage: barkeep backfill SYMBOL --from TIME [--to TIME] [--bar-size ${BAR_SIZES.join('|')}] [--verbose]
  --from      start of the span to fill (required); TIME is ${TIME_BOUND_HELP}
  --to        end of the span, exclusive (a date means through its end); default now
  --bar-size  bar size (default 1Min)
  --verbose   show the collector's log lines (config log.level) on stdout`;

const POLL_MS = 200;
const BAR_WIDTH = 30;
const DAY_MS = 86_400_000;
const COLLECTOR_MODULE = new URL(import.meta.url.endsWith('.ts') ? '../actors/collector/actor.ts' : '../actors/collector/actor.js', import.meta.url);

interface Request {
  symbol: string;
  barSize: BarSize;
  from: number;
  to: number;
  verbose: boolean;
}

function parse(argv: string[], now: number): Request | 'help' {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      from: { type: 'string' },
      to: { type: 'string' },
      'bar-size': { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return 'help';
  const { symbol, barSize } = symbolAndBarSize(positionals, values['bar-size']);
  if (values.from === undefined) throw new UsageError('--from is required (where the backfill starts)');
  const from = parseTimeBound(values.from, 'from');
  if (from === undefined) throw new UsageError(`--from: ${JSON.stringify(values.from)} is not ${TIME_BOUND_HELP}`);
  let to = now;
  if (values.to !== undefined) {
    const bound = parseTimeBound(values.to, 'to');
    if (bound === undefined) throw new UsageError(`--to: ${JSON.stringify(values.to)} is not ${TIME_BOUND_HELP}`);
    // A date's bound is its last millisecond; the span's end is exclusive.
    to = Math.min(/^\d{4}-\d{2}-\d{2}$/.test(values.to.trim()) ? bound + 1 : bound, now);
  }
  if (from < FIRST_MODELLED_MS) throw new UsageError(`--from: ${new Date(from).toISOString()} is before ${FIRST_MODELLED_YEAR}, the first year the NYSE calendar is modelled for`);
  if (from >= now) throw new UsageError(`--from: ${new Date(from).toISOString()} is not in the past`);
  if (from >= to) throw new UsageError(`--from: it is not before --to (${new Date(from).toISOString()} >= ${new Date(to).toISOString()})`);
  return { symbol, barSize, from, to, verbose: values.verbose ?? false };
}

export async function backfillCommand(argv: string[], io: BackfillCommandIo): Promise<number> {
  let req: Request | 'help';
  try {
    req = parse(argv, new RealClock().now());
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err.write(`barkeep backfill: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (req === 'help') {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  warnAboutRetention(req, io);

  const config: CollectorConfig = { ...actorConfigs(io.config).collector, autostart: null, resume: false };
  const level = req.verbose ? io.config.log.level : 'silent';
  const sup = new Supervisor({
    actors: [{ name: 'collector', module: COLLECTOR_MODULE, config }],
    clock: { kind: 'real' },
    log: createLogger({ level }),
    logLevel: level,
    // One attempt: a collector that crashes mid-backfill would come back without the job.
    policy: { warmSpares: false, maxRestarts: 0 },
  });
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
  };
  process.once('SIGINT', onSigint);
  try {
    await sup.start();
    const collector = sup.handle<CollectorRequests>('collector');
    return await run(collector, req, io, () => interrupted);
  } catch (err) {
    io.err.write(`barkeep backfill: ${(err as Error).message}\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await sup.stop().catch(() => undefined);
  }
}

async function run(collector: ActorHandle<CollectorRequests>, req: Request, io: BackfillCommandIo, interrupted: () => boolean): Promise<number> {
  const status: CollectorStatus = await collector.call('status', {});
  const span = `${new Date(req.from).toISOString()} .. ${new Date(req.to).toISOString()}`;
  io.err.write(`backfilling ${req.symbol} ${req.barSize} over ${span} (source: ${status.api_type})\n`);
  let job: BackfillJob | null = await collector.call('backfill', { symbol: req.symbol, bar_size: req.barSize, from: req.from, to: req.to });
  const progress = new ProgressView(io.err, req);
  while (job?.state === 'running') {
    progress.show(job);
    if (interrupted()) {
      progress.end();
      io.err.write(`barkeep backfill: interrupted; ${job.bars_written} bars written through ${job.done_until}\n`);
      return 130;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await collector.call('backfillStatus', {});
  }
  if (!job) throw new Error('the collector lost the backfill job');
  progress.show(job);
  progress.end();
  if (job.state === 'failed') {
    io.err.write(`barkeep backfill: failed after ${job.bars_written} bars (through ${job.done_until}): ${job.error}\n`);
    return 1;
  }
  io.out.write(`backfilled ${job.symbol} ${job.bar_size}: ${job.bars_written} bars written, ${job.from} .. ${job.to} (${status.api_type})\n`);
  return 0;
}

/** Bars older than the retention are pruned by the server later: say so before filling them. */
function warnAboutRetention(req: Request, io: BackfillCommandIo): void {
  const days = io.config.storage.retention_days[req.barSize];
  if (typeof days !== 'number' || !Number.isFinite(days)) return;
  if (req.from < new RealClock().now() - days * DAY_MS) {
    io.err.write(`note: ${req.barSize} bars older than ${days} days are pruned by the server (storage.retention_days.${req.barSize}); raise it to keep this span\n`);
  }
}

/** A progress bar redrawn in place on a terminal; a line per step otherwise. */
export class ProgressView {
  private readonly tty: boolean;
  private lastLine = '';
  private drawn = false;

  constructor(
    private readonly err: NodeJS.WritableStream,
    private readonly req: Request,
  ) {
    this.tty = Boolean((err as { isTTY?: boolean }).isTTY);
  }

  show(job: BackfillJob): void {
    const pct = Math.floor(job.progress * 100);
    if (this.tty) {
      const filled = Math.round(job.progress * BAR_WIDTH);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
      const line = `${this.req.symbol} ${this.req.barSize} [${bar}] ${String(pct).padStart(3)}%  ${job.bars_written} bars  through ${job.done_until.slice(0, 16)}Z`;
      if (line === this.lastLine) return;
      this.err.write(`\r\x1b[K${line}`);
      this.drawn = true;
      this.lastLine = line;
      return;
    }
    const line = `${this.req.symbol} ${this.req.barSize}: ${pct}% (${job.bars_written} bars, through ${job.done_until})`;
    if (line === this.lastLine) return;
    this.err.write(`${line}\n`);
    this.lastLine = line;
  }

  end(): void {
    if (this.tty && this.drawn) this.err.write('\n');
    this.drawn = false;
  }
}
