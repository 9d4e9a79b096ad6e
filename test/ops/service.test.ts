/** The Dockerfile and the systemd unit run barkeep exactly as the serve tests do. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SERVE_ARGS } from '../helpers/serve.ts';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

/** The JSON-array form of a Dockerfile instruction (`CMD ["a", "b"]`), joined continuation lines. */
function execForm(dockerfile: string, instruction: string): string[] {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n');
  const line = lines.filter((l) => l.startsWith(`${instruction} `)).pop();
  assert.ok(line, `no ${instruction}`);
  return JSON.parse(line.slice(instruction.length + 1));
}

test("the Dockerfile's command is node plus the serve tests' command, as a non-root user with a data volume and a health check", () => {
  const d = read('Dockerfile');
  assert.deepEqual([...execForm(d, 'ENTRYPOINT'), ...execForm(d, 'CMD')], ['node', ...SERVE_ARGS]);
  assert.ok((d.match(/^FROM /gm) ?? []).length >= 2, 'multi-stage');
  const user = /^USER (\S+)/m.exec(d)?.[1];
  assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
  assert.match(d, /^VOLUME \["\/data"\]/m);
  assert.match(d, /BARKEEP_DATA_DIR=\/data/);
  assert.match(d, /^HEALTHCHECK .*\n?.*\/health/m);
  assert.match(d, /npm ci --omit=dev/);
});

test("the systemd unit's ExecStart is node plus the serve tests' command", () => {
  const unit = read('deploy/barkeep.service');
  const exec = /^ExecStart=(.+)$/m.exec(unit)?.[1].trim().split(/\s+/) ?? [];
  assert.equal(basename(exec[0] ?? ''), 'node');
  assert.deepEqual(exec.slice(1), [...SERVE_ARGS]);
  assert.match(unit, /^WorkingDirectory=\S+/m);
  assert.match(unit, /^User=(?!root)\S+/m);
  assert.match(unit, /^KillSignal=SIGTERM/m);
});
