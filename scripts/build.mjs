#!/usr/bin/env node
// Compiles src/ to dist/ (JavaScript, relative imports rewritten from .ts to .js) so `barkeep` starts
// without compiling TypeScript at run time; copies every other file (the .mjs worker entries, the
// dashboard's src/ui) beside it; then bundles what a start loads (bundle.mjs: dist/main.js and each
// actor's module, with their dependencies, in a few files instead of about a thousand) and writes
// dist/.build-stamp last (bin/barkeep.mjs runs dist/ only while it is newer than every source
// file). `npm run build` runs it; `npm start` and `npm install` run it when dist/ is stale.
//   node scripts/build.mjs [--if-stale]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distIsFresh, sourceFiles } from '../bin/dist-fresh.mjs';
import { bundle } from './bundle.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

if (process.argv.includes('--if-stale') && distIsFresh(root)) process.exit(0);

let tsgo;
try {
  tsgo = join(dirname(createRequire(import.meta.url).resolve('@typescript/native-preview/package.json')), 'bin', 'tsgo');
} catch {
  // Installed without dev dependencies: no compiler, barkeep runs its sources through tsx.
  process.stderr.write('barkeep build: @typescript/native-preview is not installed; barkeep will run from src/ through tsx\n');
  process.exit(0);
}
const t0 = Date.now();
rmSync(dist, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [tsgo, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
} catch {
  // No stamp is written, so barkeep runs from src/ through tsx; an install or a start never fails here.
  process.stderr.write('barkeep build: the compile failed (see above); barkeep will run from src/ through tsx\n');
  process.exit(process.argv.includes('--if-stale') ? 0 : 1);
}
for (const file of sourceFiles(root)) {
  // Everything that is not TypeScript goes as it is: the workers' .mjs entries, the dashboard (src/ui).
  if (file.endsWith('.ts')) continue;
  const to = join(dist, relative(join(root, 'src'), file));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(file, to);
}
try {
  await bundle(root);
} catch (err) {
  // The per-file build in dist/ would still run, but half bundled it is not what was tested: run from src/.
  process.stderr.write(`barkeep build: bundling failed (${err.message}); barkeep will run from src/ through tsx\n`);
  process.exit(process.argv.includes('--if-stale') ? 0 : 1);
}
writeFileSync(join(dist, '.build-stamp'), `${new Date().toISOString()}\n`);
process.stderr.write(`barkeep build: src/ compiled to dist/ in ${Date.now() - t0} ms\n`);
