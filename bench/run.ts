/**
 * `npm run bench [-- name ...] [--quick]`: runs the benchmarks (all, or those named), prints their
 * tables and writes each one's figures to bench/results/<name>.json with the host it ran on.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

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
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const host = { node: process.version, cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: Math.round(totalmem() / 2 ** 30) };
for (const name of names) {
  console.log(`\n=== ${name}${quick ? ' (quick)' : ''} ===`);
  const mod = (await import(`./${name}.ts`)) as { run(o: { quick?: boolean }): Promise<Record<string, unknown>> };
  const started = new Date().toISOString();
  const figures = await mod.run({ quick });
  const out = { name, started, quick, host, command: `npm run bench -- ${name}${quick ? ' --quick' : ''}`, figures };
  writeFileSync(new URL(`./results/${name}.json`, import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`wrote bench/results/${name}.json`);
}
