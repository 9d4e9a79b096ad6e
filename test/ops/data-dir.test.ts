/** Regression tests from running barkeep as a new user: data directory names, metric names, the first log lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../helpers/serve.ts';

for (const name of ['bk.v2', 'barkeep.data']) {
  test(`a data directory named ${name} (a dot in its last component) is created as a directory and serves`, async () => {
    const parent = mkdtempSync(join(tmpdir(), 'barkeep-dot-'));
    try {
      const app = await serve({ env: { BARKEEP_DATA_DIR: join(parent, name) } });
      try {
        assert.equal((await app.get('/health')).status, 200);
        assert.ok(statSync(join(parent, name)).isDirectory(), `${name} must be a directory, not a file`);
        assert.ok(statSync(join(parent, name, 'data.mdb')).isFile());
        if (name === 'bk.v2') {
          const metrics = (await app.get('/metrics')).body as string;
          assert.doesNotMatch(metrics, /barkeep_process_process_/, 'process metric names are not doubled');
          assert.match(metrics, /^barkeep_process_cpu_user_seconds_total /m);
          // The start-up lines are short: the whole config is logged at debug only.
          const first = app.lines.slice(0, 3);
          for (const line of first) assert.ok(line.length < 600, `start-up line of ${line.length} chars: ${line.slice(0, 200)}`);
          assert.ok(!app.lines.some((l) => l.includes('"config":')), 'the config is not dumped at info');
        }
      } finally {
        await app[Symbol.asyncDispose]();
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
}
