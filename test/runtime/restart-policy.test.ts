import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRestart, type RestartLimits } from '../../src/runtime/restart-policy.ts';

const LIMITS: RestartLimits = { backoffInitialMs: 100, backoffMaxMs: 1_000, maxRestarts: 5, restartWindowMs: 60_000 };
const T0 = Date.UTC(2026, 0, 5, 15, 0);

test('the restart delay doubles with each restart inside the window, up to the maximum', () => {
  const delays: number[] = [];
  let history: number[] = [];
  for (let i = 0; i < 5; i++) {
    const d = decideRestart(history, T0 + i * 1_000, { ...LIMITS, maxRestarts: 10 });
    assert.equal(d.action, 'restart');
    if (d.action !== 'restart') return;
    delays.push(d.delayMs);
    history = d.history;
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1_000]);
  assert.equal(history.length, 5, 'every restart is remembered');
});

test('past maxRestarts inside the window the actor is given up on', () => {
  const history = [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000, T0 + 4_000];
  const d = decideRestart(history, T0 + 5_000, LIMITS);
  assert.deepEqual(d, { action: 'give-up', recent: 5, history });
});

test('restarts older than the window no longer count, toward the limit or the delay', () => {
  const history = [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000, T0 + 4_000];
  const d = decideRestart(history, T0 + 61_500, LIMITS);
  assert.equal(d.action, 'restart');
  if (d.action !== 'restart') return;
  assert.deepEqual(d.history, [T0 + 2_000, T0 + 3_000, T0 + 4_000, T0 + 61_500]);
  assert.equal(d.delayMs, 800, 'three restarts left in the window: the fourth delay');
});
