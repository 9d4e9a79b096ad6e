// Whether dist/ (compiled by scripts/build.mjs) is newer than every file under src/: only then does
// bin/barkeep.mjs run it. A source edited after the build makes barkeep run from src/ through tsx,
// so a stale build never runs.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function sourceFiles(root) {
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(join(root, 'src'));
  return out;
}

export function distIsFresh(root) {
  let stamp;
  try {
    stamp = statSync(join(root, 'dist', '.build-stamp')).mtimeMs;
  } catch {
    return false;
  }
  for (const f of sourceFiles(root)) if (statSync(f).mtimeMs > stamp) return false;
  return true;
}
