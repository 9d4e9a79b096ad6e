/**
 * Cold start: `barkeep serve` from process spawn to the first `GET /health` 200 (every actor
 * running), on a fresh data directory and again after a SIGKILL on the same data, run from the
 * compiled JavaScript in dist/ (what `npm start` runs) and, in the same run, from the TypeScript
 * sources through tsx (the floor it is held against: the build must start faster than the sources).
 * Also the bare `node -e 0` spawn on this machine, for scale. The load average is printed: on a
 * shared machine every figure scales with it.
 *
 * Where the time goes: barkeep logs its start-up phases on the "barkeep serving" line (ms since the
 * process started: main module loaded, config read, engine loaded, lock, storage, server built,
 * listening, actors running; per actor its worker's load and activation, src/server/startup-timer.ts),
 * and the CPU the whole process used up to the 200 is read from /proc (Linux), which a busy machine
 * inflates far less than the wall-clock figures. The breakdown is the median over the runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { distIsFresh } from '../bin/dist-fresh.mjs';
import { fmt, summarize, table } from './stats.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'barkeep.mjs');

interface StartupLine {
  [phase: string]: unknown;
  actors?: Array<{ actor: string; warm: boolean; wait_ms: number; load_ms: number; activate_ms: number }>;
}

interface Sample {
  ms: number;
  /** CPU (user + system, all threads) the process used up to the 200; NaN off Linux. */
  cpuMs: number;
  startup: StartupLine | null;
}

function cpuMsOf(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime (fields 14 and 15) in clock ticks, 100 per second on Linux.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Spawns barkeep on `dataDir`, resolves with ms to the first /health 200, then SIGKILLs it. */
async function coldStart(dataDir: string, fromSource: boolean): Promise<Sample> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', BARKEEP_PORT: '0', BARKEEP_DATA_DIR: dataDir, ...(fromSource ? { BARKEEP_FROM_SOURCE: '1' } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let buf = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no listening line within 60 s')), 60_000);
      child.stdout!.on('data', (d) => {
        buf += d;
        const m = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(buf) ?? /"url":"(http:\/\/[^"]+)"/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${buf.slice(-500)}`)));
    });
    for (;;) {
      try {
        const r = await fetch(`${url}/health`);
        await r.arrayBuffer();
        if (r.status === 200) {
          const ms = performance.now() - t0;
          const cpuMs = cpuMsOf(child.pid);
          // The serving line is written just before the 200 can be answered; give it a moment to arrive.
          for (let i = 0; i < 50 && !buf.includes('barkeep serving'); i++) await new Promise((r) => setTimeout(r, 2));
          const line = buf.split('\n').find((l) => l.includes('"barkeep serving"'));
          let startup: StartupLine | null = null;
          try {
            startup = line ? ((JSON.parse(line) as { startup?: StartupLine }).startup ?? null) : null;
          } catch {
            /* an older build without it */
          }
          return { ms, cpuMs, startup };
        }
      } catch {
        /* not yet */
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }
}

export async function run({ quick = false } = {}) {
  if (!distIsFresh(ROOT)) spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const n = quick ? 3 : 8;
  const load = loadavg()[0];
  const bare: number[] = [];
  const rows: Record<string, Sample[]> = { 'dist fresh': [], 'dist after SIGKILL': [], 'src fresh': [], 'src after SIGKILL': [] };
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    bare.push(performance.now() - t);
    // Alternate the two ways so drift on a shared machine hits both alike.
    for (const fromSource of [false, true]) {
      const dir = mkdtempSync(join(tmpdir(), 'barkeep-cold-'));
      try {
        const data = join(dir, 'data');
        rows[fromSource ? 'src fresh' : 'dist fresh'].push(await coldStart(data, fromSource));
        rows[fromSource ? 'src after SIGKILL' : 'dist after SIGKILL'].push(await coldStart(data, fromSource));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const figures: Record<string, unknown> = { runs: n, load_average_1m: load, load_average_1m_after: loadavg()[0], node_spawn_ms: summarize(bare) };
  const out: Array<Array<string | number>> = [['node -e 0', ...stats(bare), '-']];
  for (const [name, samples] of Object.entries(rows)) {
    const ms = samples.map((x) => x.ms);
    const cpu = summarize(samples.map((x) => x.cpuMs));
    figures[name.replace(/ /g, '_')] = { ...summarize(ms), cpu_ms_p50: cpu.p50 };
    out.push([name, ...stats(ms), cpu.p50]);
  }
  console.log(`spawn to GET /health 200, ms (load average ${fmt(load, 2)} at the start, ${fmt(loadavg()[0], 2)} at the end; ${n} runs)`);
  console.log(table(['start', 'p50', 'p99', 'min', 'max', 'cpu p50'], out));
  const breakdown = phaseBreakdown(rows['dist after SIGKILL']);
  if (breakdown) {
    figures.dist_after_sigkill_breakdown_ms = breakdown.figures;
    console.log('where it goes (dist after SIGKILL, medians, ms since the process started):');
    console.log(table(['phase', 'ends at', 'takes'], breakdown.rows));
  }
  const dist = summarize(rows['dist after SIGKILL'].map((x) => x.ms)).p50;
  const src = summarize(rows['src after SIGKILL'].map((x) => x.ms)).p50;
  const held = dist < src;
  figures.dist_faster_than_src = held;
  figures.under_1s_p50 = dist < 1000;
  console.log(`${held ? 'ok' : 'FAIL'}: after a SIGKILL the build serves in ${fmt(dist, 0)} ms (p50) against ${fmt(src, 0)} ms from the sources; under 1 s: ${dist < 1000 ? 'yes' : 'no'}`);
  return figures;
}

const PHASES: Array<[string, string]> = [
  ['main_at_ms', 'node started, bin/barkeep.mjs and dist/main.js loaded'],
  ['config_at_ms', 'config read and checked; actor workers start loading'],
  ['checks_at_ms', 'strategy built once (config check)'],
  ['engine_loaded_at_ms', 'engine modules loaded (fastify, storage, ...)'],
  ['lock_at_ms', 'data directory locked'],
  ['storage_at_ms', 'LMDB opened (main thread view)'],
  ['server_at_ms', 'HTTP server built'],
  ['listen_at_ms', 'listening'],
  ['actors_at_ms', 'actors activated one by one (workers already loaded)'],
];

/** Medians of the logged start-up phases and per-actor worker timings. */
function phaseBreakdown(samples: Sample[]): { rows: Array<Array<string | number>>; figures: Record<string, number> } | null {
  const lines = samples.map((x) => x.startup).filter((x): x is StartupLine => x !== null);
  if (lines.length === 0) return null;
  const med = (xs: number[]) => summarize(xs.filter(Number.isFinite)).p50;
  const figures: Record<string, number> = {};
  const rows: Array<Array<string | number>> = [];
  let prev = 0;
  for (const [key, what] of PHASES) {
    const at = med(lines.map((l) => Number(l[key])));
    if (!Number.isFinite(at)) continue;
    figures[key] = at;
    rows.push([`${key.replace(/_at_ms$/, '')}: ${what}`, at, at - prev]);
    prev = at;
  }
  for (const name of ['collector', 'arbiter', 'trader']) {
    const a = lines.map((l) => l.actors?.find((x) => x.actor === name)).filter((x) => x !== undefined);
    if (a.length === 0) continue;
    const load = med(a.map((x) => x.load_ms));
    const activate = med(a.map((x) => x.activate_ms));
    const wait = med(a.map((x) => x.wait_ms));
    figures[`${name}_load_ms`] = load;
    figures[`${name}_activate_ms`] = activate;
    figures[`${name}_wait_ms`] = wait;
    rows.push([`  ${name}: worker load (in parallel) / waited for it / activation`, '', `${fmt(load, 0)} / ${fmt(wait, 0)} / ${fmt(activate, 0)}`]);
  }
  const health = med(samples.map((x) => x.ms));
  rows.push(['first /health 200 seen by the bench (spawn included)', health, '']);
  return { rows, figures };
}

function stats(samples: number[]): number[] {
  const s = summarize(samples);
  return [s.p50, s.p99, Math.min(...samples), s.max];
}
