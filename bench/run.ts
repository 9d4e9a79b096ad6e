/**
 * `npm run bench [-- name ...] [--quick]`: runs the benchmarks (all, or those named), prints their
 * tables and writes each one's figures to bench/results/<name>.json with the host it ran on
 * (BARKEEP_BENCH_RESULTS names another directory). `--quick` is the CI smoke run: small sizes,
 * figures printed, no goal enforced (`npm run test:bench` runs it).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--'));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'stats.ts'].includes(f))
  .map((f) => basename(f, '.ts'))
  .sort();
const names = wanted.length ? wanted : available;
const unknown = names.filter((n) => !available.includes(n));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
const resultsDir = process.env.BARKEEP_BENCH_RESULTS ? pathToFileURL(`${resolve(process.env.BARKEEP_BENCH_RESULTS)}/`) : new URL('./results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const host = { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: Math.round(totalmem() / 2 ** 30) };
for (const name of names) {
  console.log(`\n=== ${name}${quick ? ' (quick)' : ''} ===`);
  const mod = (await import(`./${name}.ts`)) as { run(o: { quick?: boolean }): Promise<Record<string, unknown>> };
  const started = new Date().toISOString();
  const figures = await mod.run({ quick });
  const out = { name, started, quick, host, command: `npm run bench -- ${name}${quick ? ' --quick' : ''}`, figures };
  const file = new URL(`${name}.json`, resultsDir);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote ${relative(process.cwd(), fileURLToPath(file))} (${((Date.now() - Date.parse(started)) / 1000).toFixed(1)} s)`);
}
