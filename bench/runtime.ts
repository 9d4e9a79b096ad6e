/**
 * Runtime benchmark: latency between two actors through the runtime's peer links, one way and
 * round trip, and throughput, beside raw postMessage between the same two threads in the same
 * run; and crash-to-serving-again time for a restarted actor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { Supervisor } from '../src/runtime/supervisor.ts';
import type { PingPongRequests } from './fixtures/pingpong-actor.ts';
import { fmt, rssMiB, summarize, table } from './stats.ts';

const silent = pino({ level: 'silent' });

async function latency(n: number, burst: number) {
  const module = new URL('./fixtures/pingpong-actor.ts', import.meta.url);
  const sup = new Supervisor({
    actors: [
      { name: 'a', module, config: { peer: 'b', lead: false }, peers: ['b'] },
      { name: 'b', module, config: { peer: 'a', lead: true } },
    ],
    clock: { kind: 'real' },
    log: silent,
    logLevel: 'silent',
    policy: { warmSpares: false },
  });
  await sup.start();
  const lead = sup.handle<PingPongRequests>('b');
  // Warm both paths, then alternate rounds so drift on a shared machine hits both alike.
  await lead.call('run', { n: 500, mode: 'raw', burst: 1000 });
  await lead.call('run', { n: 500, mode: 'runtime', burst: 1000 });
  const acc = { raw: { rtt: [] as number[], one: [] as number[], tput: [] as number[] }, runtime: { rtt: [] as number[], one: [] as number[], tput: [] as number[] } };
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['raw', 'runtime'] as const) {
      const res = await lead.call('run', { n: Math.ceil(n / rounds), mode, burst });
      acc[mode].rtt.push(...res.rttUs);
      acc[mode].one.push(...res.oneWayUs);
      acc[mode].tput.push(res.burstPerSec);
    }
  }
  await sup.stop();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return {
    raw: { rtt_us: summarize(acc.raw.rtt), one_way_us: summarize(acc.raw.one), msgs_per_s: median(acc.raw.tput) },
    runtime: { rtt_us: summarize(acc.runtime.rtt), one_way_us: summarize(acc.runtime.one), msgs_per_s: median(acc.runtime.tput) },
  };
}

async function crashToServing(restarts: number) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-'));
  const module = new URL('../test/fixtures/counter-actor.ts', import.meta.url);
  const sup = new Supervisor({
    actors: [{ name: 'x', module, config: { dataDir: dir } }],
    clock: { kind: 'real' },
    log: silent,
    logLevel: 'silent',
    faults: true,
    // Default backoff (100 ms first restart); a tiny window keeps every crash a "first" restart.
    policy: { backoffInitialMs: 100, restartWindowMs: 1, warmSpares: true },
  });
  await sup.start();
  const times: number[] = [];
  for (let i = 0; i < restarts; i++) {
    await new Promise((r) => setTimeout(r, 400)); // let the spare load
    const before = sup.list()[0].restarts;
    const t0 = performance.now();
    await sup.crash('x');
    for (;;) {
      const info = sup.list()[0];
      if (info.restarts > before && info.state === 'running') {
        try {
          await sup.call('x', 'total');
          break;
        } catch {
          /* not serving yet */
        }
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    times.push(performance.now() - t0);
  }
  await sup.stop();
  rmSync(dir, { recursive: true, force: true });
  return summarize(times);
}

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const rssStart = rssMiB();
  const lat = await latency(opts.quick ? 500 : 20_000, opts.quick ? 2_000 : 100_000);
  const crash = await crashToServing(opts.quick ? 3 : 20);
  const overheadP50 = lat.runtime.one_way_us.p50 / lat.raw.one_way_us.p50 - 1;
  const overheadRttP50 = lat.runtime.rtt_us.p50 / lat.raw.rtt_us.p50 - 1;
  console.log('\nruntime: actor-to-actor messages (µs), runtime peer link vs raw postMessage, same threads, same run');
  console.log(
    table(
      ['path', 'one-way p50', 'p99', 'p99.9', 'rtt p50', 'p99', 'p99.9', 'msgs/s'],
      (['raw', 'runtime'] as const).map((m) => [
        m,
        lat[m].one_way_us.p50,
        lat[m].one_way_us.p99,
        lat[m].one_way_us.p999,
        lat[m].rtt_us.p50,
        lat[m].rtt_us.p99,
        lat[m].rtt_us.p999,
        Math.round(lat[m].msgs_per_s),
      ]),
    ),
  );
  console.log(`overhead at p50: one-way ${fmt(overheadP50 * 100)}%, round trip ${fmt(overheadRttP50 * 100)}% (goal: at most 20%)`);
  console.log(`crash to serving again (ms): p50 ${fmt(crash.p50)}  p99 ${fmt(crash.p99)}  max ${fmt(crash.max)}  n=${crash.n} (goal: p50 under 250)`);
  const rssEnd = rssMiB();
  console.log(`main-thread RSS: ${fmt(rssStart)} MiB at start, ${fmt(rssEnd)} MiB at end`);
  return {
    latency: lat,
    overhead_p50_one_way: overheadP50,
    overhead_p50_round_trip: overheadRttP50,
    crash_to_serving_ms: crash,
    rss_mib: { start: rssStart, end: rssEnd },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
