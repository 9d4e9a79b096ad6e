/**
 * Cold start: `barkeep serve` from process spawn to the first `GET /health` 200 (every actor
 * running), on a fresh data directory and again after a SIGKILL on the same data, run from the
 * compiled JavaScript in dist/ (what `npm start` runs) and, in the same run, from the TypeScript
 * sources through tsx (the floor it is held against: the build must start faster than the sources).
 * Also the bare `node -e 0` spawn on this machine, for scale. The load average is printed: on a
 * shared machine every figure scales with it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { distIsFresh } from '../bin/dist-fresh.mjs';
import { fmt, summarize, table } from './stats.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'barkeep.mjs');

/** Spawns barkeep on `dataDir`, resolves with ms to the first /health 200, then SIGKILLs it. */
async function coldStart(dataDir: string, fromSource: boolean): Promise<number> {
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
        if (r.status === 200) return performance.now() - t0;
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
  const rows: Record<string, number[]> = { 'dist fresh': [], 'dist after SIGKILL': [], 'src fresh': [], 'src after SIGKILL': [] };
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
  const figures: Record<string, unknown> = { runs: n, load_average_1m: load, node_spawn_ms: summarize(bare) };
  const out: Array<Array<string | number>> = [['node -e 0', ...stats(bare)]];
  for (const [name, samples] of Object.entries(rows)) {
    figures[name.replace(/ /g, '_')] = summarize(samples);
    out.push([name, ...stats(samples)]);
  }
  console.log(`spawn to GET /health 200, ms (load average ${fmt(load, 2)} on ${n} runs)`);
  console.log(table(['start', 'p50', 'p99', 'min', 'max'], out));
  const dist = summarize(rows['dist after SIGKILL']).p50;
  const src = summarize(rows['src after SIGKILL']).p50;
  const held = dist < src;
  figures.dist_faster_than_src = held;
  figures.under_1s_p50 = dist < 1000;
  console.log(`${held ? 'ok' : 'FAIL'}: after a SIGKILL the build serves in ${fmt(dist, 0)} ms (p50) against ${fmt(src, 0)} ms from the sources; under 1 s: ${dist < 1000 ? 'yes' : 'no'}`);
  return figures;
}

function stats(samples: number[]): number[] {
  const s = summarize(samples);
  return [s.p50, s.p99, Math.min(...samples), s.max];
}
