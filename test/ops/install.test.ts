/** The default install: fast (no native build only a benchmark needs) and quiet on Node 20. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; version?: string }>;
};
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

test('npm ci does not compile better-sqlite3, which only the storage benchmark uses', () => {
  assert.equal(pkg.dependencies['better-sqlite3'], undefined);
  assert.equal(pkg.devDependencies['better-sqlite3'], undefined);
  const found = Object.keys(lock.packages).filter((p) => p.endsWith('node_modules/better-sqlite3'));
  assert.deepEqual(found, []);
});

/** The lowest major a range like ">=22", ">= 18.0.0", "^20 || >=22" demands, or 0 when it demands none. */
function minimumMajor(range: string): number {
  const alternatives = range.split('||').map((alt) => {
    const m = /(?:>=|\^|~)?\s*v?(\d+)/.exec(alt.trim());
    return m ? Number(m[1]) : 0;
  });
  return Math.min(...alternatives);
}

test('no locked package demands a newer Node than package.json engines (no EBADENGINE warning on Node 20)', () => {
  const ours = minimumMajor(pkg.engines.node);
  assert.equal(ours, 20);
  const offenders: string[] = [];
  for (const [path, info] of Object.entries(lock.packages)) {
    const node = !Array.isArray(info.engines) ? info.engines?.node : undefined;
    if (!path || !node) continue;
    if (minimumMajor(node) > ours) offenders.push(`${path}@${info.version} requires node ${node}`);
  }
  assert.deepEqual(offenders, []);
});
