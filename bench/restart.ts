/**
 * Restart under load: crash to serving again, for each actor in turn, while the others are busy.
 *
 * The real engine (collector on the simulated market, arbiter, trader with sma-crossover on the
 * paper broker, LMDB and the order journal in a temp dir) on an accelerated clock, 60 simulated
 * minutes per real minute, so the collector writes a batch of bars for every symbol once a second
 * (a minute's close) and the trader trades on them. Each sample: the supervisor's crash drill kills one actor's
 * thread; timed from the drill until the restarted actor answers a `status` call. The supervisor's
 * default first-restart backoff (100 ms) is included; the restart window is shortened so every
 * crash counts as a first restart rather than marking the actor failed, and crashes are 1.5 s
 * apart so the supervisor's warm spare has loaded, as it has for any crash but a crash loop.
 *
 *   node --import tsx bench/restart.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../src/config/load.ts';
import { startEngine } from '../src/server/engine.ts';
import { fmt, rssMiB, summarize, table, type Summary } from './stats.ts';

const ACTORS = ['trader', 'collector', 'arbiter'] as const;
type ActorName = (typeof ACTORS)[number];

function symbols(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`S${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + (Math.floor(i / 26) % 26))}`);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Between two crashes: time for the supervisor's warm spare to load. */
const SPARE_LOAD_MS = 1_500;

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const perActor = opts.quick ? 1 : 20;
  const collected = symbols(opts.quick ? 20 : 50);
  const traded = collected.slice(0, 8);
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-restart-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      server: { port: 0 },
      log: { level: 'silent' },
      runtime: { faults: true, clock: 'accelerated', clock_speed: 60, clock_start: '2026-01-05T15:00:00Z' },
      collector: { symbols: collected, backfill_days: 1 },
      trader: { symbols: traded },
    },
  });
  const engine = await startEngine(config, { log: pino({ level: 'silent' }), policy: { restartWindowMs: 1 } });
  const sup = engine.supervisor;
  const info = (name: ActorName) => sup.list().find((a) => a.name === name)!;
  const traderStatus = () => sup.handle<{ status: { req: object; res: { bars_collected: number; orders_submitted?: number } } }>('trader').call('status', {});
  try {
    // Trading before the first crash: bars reach the trader and orders go out.
    const until = Date.now() + 60_000;
    while ((await traderStatus()).bars_collected < (opts.quick ? 2 : 8)) {
      if (Date.now() > until) throw new Error('the trader saw no bars within a minute');
      await sleep(50);
    }
    const times: Record<ActorName, number[]> = { trader: [], collector: [], arbiter: [] };
    /** The supervisor's account of each restart: waited for the worker, activation. */
    const parts: Record<ActorName, { wait: number[]; activate: number[]; cold: number; firstCall: number[] }> = {
      trader: { wait: [], activate: [], cold: 0, firstCall: [] },
      collector: { wait: [], activate: [], cold: 0, firstCall: [] },
      arbiter: { wait: [], activate: [], cold: 0, firstCall: [] },
    };
    const load0 = loadavg()[0];
    /** From the drill to the supervisor seeing the thread's exit, and from there to serving (backoff included). */
    const exits: number[] = [];
    const starts: number[] = [];
    for (let i = 0; i < perActor; i++) {
      for (const name of ACTORS) {
        // The supervisor's spare worker for the next incarnation loads (module graph, tsx) in the
        // meantime: on this loaded machine that takes up to a second or more. A crash before it
        // is ready waits for it, which measures the load, not the restart.
        await sleep(SPARE_LOAD_MS);
        const restarts = info(name).restarts;
        const t0 = performance.now();
        await sup.crash(name);
        let exited = 0;
        let running = 0;
        for (;;) {
          const a = info(name);
          if (!exited && a.state === 'restarting') exited = performance.now();
          if (a.restarts > restarts && a.state === 'running') {
            running ||= performance.now();
            try {
              await sup.call(name, 'status', {});
              break;
            } catch {
              /* not serving yet */
            }
          }
          await sleep(1);
        }
        const t1 = performance.now();
        times[name].push(t1 - t0);
        parts[name].firstCall.push(t1 - running);
        const timing = sup.timings().find((x) => x.actor === name);
        if (timing) {
          parts[name].wait.push(timing.wait_ms);
          parts[name].activate.push(timing.activate_ms);
          if (!timing.warm) parts[name].cold++;
        }
        if (exited) {
          exits.push(exited - t0);
          starts.push(t1 - exited);
        }
      }
    }
    const summaries = Object.fromEntries(ACTORS.map((n) => [n, summarize(times[n])])) as Record<ActorName, Summary>;
    const all = summarize(ACTORS.flatMap((n) => times[n]));
    const load1 = loadavg()[0];
    console.log(
      `crash to serving again under load (ms): ${collected.length} symbols collected every simulated minute (once a second), trader on ${traded.length}; load average ${fmt(load0, 2)} -> ${fmt(load1, 2)}`,
    );
    console.log(
      table(
        ['actor', 'n', 'p50', 'p99', 'p99.9', 'max', 'activate p50', 'activate p99', 'running -> answered p50', 'p99', 'spare not ready'],
        [
          ...ACTORS.map((n) => {
            const a = summarize(parts[n].activate);
            const c = summarize(parts[n].firstCall);
            return [n, summaries[n].n, summaries[n].p50, summaries[n].p99, summaries[n].p999, summaries[n].max, a.p50, a.p99, c.p50, c.p99, parts[n].cold];
          }),
          ['all', all.n, all.p50, all.p99, all.p999, all.max, '', '', '', '', ''],
        ],
      ),
    );
    const exit = summarize(exits);
    const start = summarize(starts);
    console.log(`of which: drill to exit seen p50 ${fmt(exit.p50)} p99 ${fmt(exit.p99)}; exit to serving (100 ms backoff + start) p50 ${fmt(start.p50)} p99 ${fmt(start.p99)}`);
    console.log('goal: p50 under 150 ms, p99 under 400 ms');
    return {
      collected_symbols: collected.length,
      traded_symbols: traded.length,
      load_average_1m: load0,
      load_average_1m_after: load1,
      crash_to_serving_ms: { ...summaries, all },
      activate_ms: Object.fromEntries(ACTORS.map((n) => [n, summarize(parts[n].activate)])),
      waited_for_worker_ms: Object.fromEntries(ACTORS.map((n) => [n, summarize(parts[n].wait)])),
      spare_not_ready: Object.fromEntries(ACTORS.map((n) => [n, parts[n].cold])),
      drill_to_exit_ms: exit,
      exit_to_serving_ms: start,
      goals_met: all.p50 < 150 && all.p99 < 400,
      rss_mib: rssMiB(),
    };
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
