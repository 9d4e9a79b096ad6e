/**
 * The CI smoke run of the benchmarks (`npm run test:bench`): `npm run bench -- --quick` runs every
 * benchmark at small sizes and writes its figures, so a benchmark that breaks is noticed. No timing
 * is judged here (the machine is shared and noisy); only that each one ran and wrote the figures it
 * promises. Not part of `npm test`: the quick run takes about a minute (the dashboard's browser,
 * the restart benchmark's engine), over the suite's budget; CI runs it as its own step.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const BENCHES = ['arbiter', 'collect', 'dashboard', 'restart', 'runtime', 'storage', 'trader'];

function percentiles(x: unknown, what: string): void {
  const s = x as Record<string, unknown>;
  for (const q of ['p50', 'p99', 'p999']) assert.ok(typeof s?.[q] === 'number' && Number.isFinite(s[q]) && (s[q] as number) > 0, `${what}.${q} is a positive number, got ${JSON.stringify(s?.[q])}`);
}

test('npm run bench -- --quick runs every benchmark and writes its figures, the trader\'s beside the fdatasync floor', { timeout: 300_000 }, async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-bench-quick-'));
  t.after(() => fs.rmSync(out, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick'], { cwd: root, env: { ...process.env, BARKEEP_BENCH_RESULTS: out }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `bench exited ${code}: ${stderr.slice(-2000)}`);
  for (const name of BENCHES) {
    assert.match(stdout, new RegExp(`=== ${name} \\(quick\\) ===`));
    const json = JSON.parse(fs.readFileSync(path.join(out, `${name}.json`), 'utf8'));
    assert.equal(json.name, name);
    assert.equal(json.quick, true);
    assert.equal(json.command, `npm run bench -- ${name} --quick`);
    assert.ok(json.host.node.startsWith('v'));
  }
  const trader = JSON.parse(fs.readFileSync(path.join(out, 'trader.json'), 'utf8')).figures;
  percentiles(trader.bar_to_order_us, 'figures.bar_to_order_us');
  percentiles(trader.fsync_floor_us, 'figures.fsync_floor_us');
  assert.ok(trader.bar_to_order_us.n > 0 && trader.bar_to_order_us.n === trader.fsync_floor_us.n, 'one floor sample per order');
  const restart = JSON.parse(fs.readFileSync(path.join(out, 'restart.json'), 'utf8')).figures;
  assert.equal(restart.crash_to_serving_ms.all.n, 3, 'one crash of each actor');
  const arbiter = JSON.parse(fs.readFileSync(path.join(out, 'arbiter.json'), 'utf8')).figures;
  assert.equal(arbiter.full_path.missing, 0);
});
