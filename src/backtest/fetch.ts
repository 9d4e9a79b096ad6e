/**
 * `barkeep backtest --fetch`: fills the spans the cache lacks before the run, through the
 * collector's sources (its configured vendor, within that vendor's rate limit, or the simulated
 * market), with the progress bar `barkeep backfill` shows. Like `backfill`, it starts only the
 * collector actor, which neither resumes nor writes the server's collection checkpoint.
 */
import type { BackfillJob, CollectorConfig, CollectorRequests } from '../actors/collector/protocol.ts';
import { ProgressView } from '../cli/backfill.ts';
import type { Config } from '../config/schema.ts';
import type { BarSize } from '../market/bar-size.ts';
import { createLogger } from '../runtime/log.ts';
import { Supervisor } from '../runtime/supervisor.ts';
import { actorConfigs } from '../config/actor-configs.ts';
import type { MissingSpan } from './bars.ts';

const COLLECTOR_MODULE = new URL(import.meta.url.endsWith('.ts') ? '../actors/collector/actor.ts' : '../actors/collector/actor.js', import.meta.url);
const POLL_MS = 200;

export interface FetchOutcome {
  symbol: string;
  from: number;
  to: number;
  bars_written: number;
  error: string | null;
}

/** Backfills each span in turn; a span that fails is reported and the others still run. */
export async function fetchSpans(config: Config, barSize: BarSize, spans: readonly MissingSpan[], err: NodeJS.WritableStream, now: number): Promise<FetchOutcome[]> {
  const collectorConfig: CollectorConfig = { ...actorConfigs(config).collector, autostart: null, resume: false };
  const sup = new Supervisor({
    actors: [{ name: 'collector', module: COLLECTOR_MODULE, config: collectorConfig }],
    clock: { kind: 'real' },
    log: createLogger({ level: 'silent' }),
    logLevel: 'silent',
    policy: { warmSpares: false, maxRestarts: 0 },
  });
  const out: FetchOutcome[] = [];
  try {
    await sup.start();
    const collector = sup.handle<CollectorRequests>('collector');
    const status = await collector.call('status', {});
    err.write(`fetching ${spans.length} missing span(s) from ${status.api_type}\n`);
    for (const span of spans) {
      const to = Math.min(span.to, now);
      if (span.from >= to) continue;
      const view = new ProgressView(err, { symbol: span.symbol, barSize, from: span.from, to, verbose: false });
      let job: BackfillJob | null = await collector.call('backfill', { symbol: span.symbol, bar_size: barSize, from: span.from, to });
      while (job?.state === 'running') {
        view.show(job);
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        job = await collector.call('backfillStatus', {});
      }
      if (job) view.show(job);
      view.end();
      out.push({ symbol: span.symbol, from: span.from, to, bars_written: job?.bars_written ?? 0, error: job?.state === 'failed' ? job.error : job ? null : 'the collector lost the job' });
    }
  } finally {
    await sup.stop().catch(() => undefined);
  }
  return out;
}
