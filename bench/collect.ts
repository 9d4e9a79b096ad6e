/**
 * The collector's source side: MassiveSource fetching 1Min bars of one trading day (960 bars,
 * 04:00–20:00 New York) for 500 symbols from the fake Massive, with pacing off (as on a paid plan),
 * a few requests in flight at once, the sweep repeated to watch memory:
 *
 * - end to end: bars/s fetched, parsed and validated; request latency p50/p99/p99.9; CPU time per
 *   bar (process.cpuUsage, this process only: the fake runs in a child process);
 * - RSS before the first sweep, after the first, and after the last (it must stay flat);
 * - parse only: JSON.parse + parseAggsPage of one 960-bar page, no I/O.
 *
 * `run({ sink })` hands every symbol's bars to `sink` (the lead's collector → LMDB path plugs in
 * here). Run alone: node --import tsx bench/collect.ts [--quick]
 */
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bar } from '../src/market/bar.ts';
import { RealClock } from '../src/market/clock.ts';
import { MassiveSource } from '../src/sources/massive/source.ts';
import { parseAggsPage } from '../src/sources/massive/wire.ts';
import { fmt, rssMiB, summarize, table } from './stats.ts';

export type BarSink = (bars: Bar[]) => void | Promise<void>;

const DAY_START = Date.UTC(2026, 2, 4); // a Wednesday
const DAY_END = DAY_START + 86_400_000;
const KEY = 'bench-key';

async function startFake(): Promise<{ url: string; stop(): void }> {
  const script = fileURLToPath(new URL('../test/fakes/massive/standalone.ts', import.meta.url));
  const child = fork(script, ['--key', KEY], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`fake Massive exited with ${code}`)));
  });
  return { url, stop: () => child.disconnect() };
}

function symbols(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `SYM${String(i).padStart(4, '0')}`);
}

async function sweep(source: MassiveSource, names: string[], concurrency: number, sink: BarSink, latenciesMs: number[]): Promise<number> {
  let next = 0;
  let bars = 0;
  const worker = async () => {
    while (next < names.length) {
      const symbol = names[next++];
      const t0 = process.hrtime.bigint();
      const got = await source.fetchBars(symbol, '1Min', DAY_START, DAY_END);
      latenciesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      bars += got.length;
      await sink(got);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return bars;
}

function parseOnly(body: string, repeats: number): { barsPerSec: number; nsPerBar: number } {
  let bars = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < repeats; i++) bars += parseAggsPage(JSON.parse(body), 'SYM0000', '1Min', DAY_START, DAY_END, 0).bars.length;
  const ns = Number(process.hrtime.bigint() - t0);
  return { barsPerSec: bars / (ns / 1e9), nsPerBar: ns / bars };
}

export async function run(opts: { quick?: boolean; sink?: BarSink } = {}): Promise<Record<string, unknown>> {
  const plan = opts.quick ? { symbols: 50, sweeps: 2, concurrency: 8 } : { symbols: 500, sweeps: 10, concurrency: 8 };
  let checksum = 0;
  const sink: BarSink = opts.sink ?? ((bars) => void (checksum += bars.length && bars[bars.length - 1].close));
  const fake = await startFake();
  const source = new MassiveSource({ apiKey: KEY, restUrl: fake.url, rateLimitPerMin: Infinity, clock: new RealClock() });
  try {
    const names = symbols(plan.symbols);
    const rssStart = rssMiB();
    const latencies: number[] = [];
    const perSweep: Array<{ sweep: number; bars: number; seconds: number; barsPerSec: number; cpuUsPerBar: number; rssMiB: number }> = [];
    let totalBars = 0;
    let totalCpuUs = 0;
    let totalSec = 0;
    for (let s = 1; s <= plan.sweeps; s++) {
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const bars = await sweep(source, names, plan.concurrency, sink, latencies);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      const cpuUs = cpu.user + cpu.system;
      perSweep.push({ sweep: s, bars, seconds, barsPerSec: bars / seconds, cpuUsPerBar: cpuUs / bars, rssMiB: rssMiB() });
      if (s > 1) {
        // The first sweep warms the JIT and the connection pool; steady state is what counts.
        totalBars += bars;
        totalCpuUs += cpuUs;
        totalSec += seconds;
      }
    }
    if (plan.sweeps === 1) {
      totalBars = perSweep[0].bars;
      totalCpuUs = perSweep[0].cpuUsPerBar * perSweep[0].bars;
      totalSec = perSweep[0].seconds;
    }
    const lat = summarize(latencies);

    // Parse alone: one page as the fake serves it.
    const page = await fetch(`${fake.url}/v2/aggs/ticker/SYM0000/range/1/minute/${DAY_START}/${DAY_END - 1}?adjusted=true&sort=asc&limit=50000`, {
      headers: { authorization: `Bearer ${KEY}` },
    }).then((r) => r.text());
    const parse = parseOnly(page, opts.quick ? 50 : 500);

    const stats = source.stats();
    console.log(
      table(
        ['sweep', 'bars', 's', 'bars/s', 'cpu µs/bar', 'RSS MiB'],
        perSweep.map((r) => [String(r.sweep), String(r.bars), fmt(r.seconds, 2), String(Math.round(r.barsPerSec)), fmt(r.cpuUsPerBar, 2), fmt(r.rssMiB, 1)]),
      ),
    );
    console.log(
      table(
        ['what', 'value'],
        [
          ['symbols x sweeps', `${plan.symbols} x ${plan.sweeps} (${plan.concurrency} in flight)`],
          ['steady bars/s (fetch+parse+validate)', String(Math.round(totalBars / totalSec))],
          ['steady CPU µs per bar', fmt(totalCpuUs / totalBars, 2)],
          ['request ms p50 / p99 / p99.9', `${fmt(lat.p50, 2)} / ${fmt(lat.p99, 2)} / ${fmt(lat.p999, 2)}`],
          ['parse-only bars/s', String(Math.round(parse.barsPerSec))],
          ['parse-only ns per bar', fmt(parse.nsPerBar, 0)],
          ['RSS MiB start / after sweep 1 / end', `${fmt(rssStart)} / ${fmt(perSweep[0].rssMiB)} / ${fmt(perSweep.at(-1)!.rssMiB)}`],
          ['requests / errors / malformed', `${stats.requests} / ${stats.errors} / ${stats.malformed}`],
        ],
      ),
    );
    return {
      symbols: plan.symbols,
      sweeps: plan.sweeps,
      concurrency: plan.concurrency,
      bars_per_sweep: perSweep[0].bars,
      steady_bars_per_sec: totalBars / totalSec,
      steady_cpu_us_per_bar: totalCpuUs / totalBars,
      request_ms: lat,
      parse_only_bars_per_sec: parse.barsPerSec,
      parse_only_ns_per_bar: parse.nsPerBar,
      rss_mib_start: rssStart,
      rss_mib_after_first_sweep: perSweep[0].rssMiB,
      rss_mib_end: perSweep.at(-1)!.rssMiB,
      per_sweep: perSweep,
      requests: stats.requests,
      errors: stats.errors,
      checksum,
    };
  } finally {
    await source.close();
    fake.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
