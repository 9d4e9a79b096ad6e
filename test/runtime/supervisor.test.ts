import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import pino from 'pino';
import { Supervisor, type SupervisorPolicy } from '../../src/runtime/supervisor.ts';
import type { ActorCallError, RuntimeError } from '../../src/runtime/protocol.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import type { ClockSpec } from '../../src/runtime/clock.ts';
import { waitFor } from '../helpers/wait.ts';

const FIXTURE = new URL('../fixtures/counter-actor.ts', import.meta.url);
const silent = pino({ level: 'silent' });

function makeSupervisor(policy: Partial<SupervisorPolicy> = {}, clock: ClockSpec = { kind: 'real' }) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-sup-'));
  const sup = new Supervisor({
    actors: [
      { name: 'alpha', module: FIXTURE, config: { dataDir: dir, peer: 'beta' }, peers: ['beta'] },
      { name: 'beta', module: FIXTURE, config: { dataDir: dir, peer: 'alpha' } },
    ],
    clock,
    log: silent,
    logLevel: 'silent',
    faults: true,
    policy: { backoffInitialMs: 20, backoffMaxMs: 200, ...policy },
  });
  return {
    sup,
    async [Symbol.asyncDispose]() {
      await sup.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const until = (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) => waitFor(cond, { what, timeoutMs, intervalMs: 10 });

test('each actor runs in its own worker thread and answers typed calls', async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  const actors = env.sup.list();
  assert.deepEqual(
    actors.map((a) => a.state),
    ['running', 'running'],
  );
  const threads = new Set(actors.map((a) => a.thread_id));
  assert.equal(threads.size, 2);
  assert.ok(!threads.has(threadId), 'not on the main thread');
  assert.deepEqual(await env.sup.call('alpha', 'echo', { value: { a: [1, 2] } }), { a: [1, 2] });
  assert.equal(await env.sup.handle<{ add: { req: { n: number }; res: number } }>('beta').call('add', { n: 2 }), 2);
});

test('actors exchange messages over their own peer ports', async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  assert.equal(await env.sup.call('alpha', 'ping'), true);
  await until(async () => (await env.sup.call('alpha', 'pongs')) === 1, 'a pong from beta');
  const beta = env.sup.counters('beta');
  assert.ok(beta.messagesIn >= 1 && beta.messagesOut >= 1, 'beta counted the ping in and the pong out');
});

test('a crashed actor restarts in a new thread and resumes from its LMDB checkpoint', async () => {
  await using env = makeSupervisor();
  await env.sup.start();
  await env.sup.call('alpha', 'add', { n: 5 });
  const before = env.sup.list().find((a) => a.name === 'alpha')!;
  await env.sup.crash('alpha');
  await until(() => env.sup.list().find((a) => a.name === 'alpha')!.restarts === 1, 'the restart');
  await env.sup.whenRunning('alpha');
  const after = env.sup.list().find((a) => a.name === 'alpha')!;
  assert.equal(after.state, 'running');
  assert.notEqual(after.thread_id, before.thread_id);
  assert.match(after.last_error ?? '', /drill: alpha crashed/);
  assert.equal(await env.sup.call('alpha', 'total'), 5, 'state came back from the checkpoint');
  assert.equal(await env.sup.call('alpha', 'incarnation'), 1);
  // The peer link was wired again: beta's pong reaches the new alpha.
  assert.equal(await env.sup.call('alpha', 'ping'), true);
  await until(async () => (await env.sup.call('alpha', 'pongs')) === 1, 'a pong after the restart');
  // And the other direction: beta can reach the new alpha.
  assert.equal(await env.sup.call('beta', 'ping'), true);
  await until(async () => (await env.sup.call('beta', 'pongs')) === 1, 'alpha answering beta');
});

test('past the restart intensity the actor is marked failed and health names it', async () => {
  await using env = makeSupervisor({ maxRestarts: 2, backoffInitialMs: 5 });
  await env.sup.start();
  for (let i = 0; i < 2; i++) {
    await env.sup.crash('beta');
    await until(() => env.sup.list().find((a) => a.name === 'beta')!.restarts === i + 1, `restart ${i + 1}`);
    await env.sup.whenRunning('beta');
  }
  assert.equal(env.sup.health().ok, true);
  await env.sup.crash('beta');
  await until(() => env.sup.list().find((a) => a.name === 'beta')!.state === 'failed', 'the failed state');
  const health = env.sup.health();
  assert.equal(health.ok, false);
  assert.match(health.reasons.join(' '), /beta is failed/);
  await assert.rejects(env.sup.call('beta', 'total'), (err: RuntimeError) => err.code === 'ACTOR_UNAVAILABLE');
  assert.equal(await env.sup.call('alpha', 'echo', { value: 1 }), 1, 'the other actor is untouched');
});

test('a request of unknown type fails that call and the actor lives', async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  await assert.rejects(env.sup.call('alpha', 'no-such-request'), (err: ActorCallError) => err.code === 'ACTOR_UNKNOWN_MESSAGE' && /no-such-request/.test(err.message));
  assert.equal(env.sup.counters('alpha').failed, 1);
  assert.equal(await env.sup.call('alpha', 'echo', { value: 'still here' }), 'still here');
  assert.equal(env.sup.list()[0].restarts, 0);
});

test('a request that cannot be cloned fails that call and the actor lives', async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  await assert.rejects(env.sup.call('alpha', 'echo', { value: () => 1 }), (err: RuntimeError) => err.code === 'ACTOR_CALL_FAILED');
  assert.equal(env.sup.counters('alpha').failed, 1);
  assert.equal(await env.sup.call('alpha', 'echo', { value: 2 }), 2);
});

test("a handler's error comes back with its code and field, and the actor lives", async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  await assert.rejects(env.sup.call('beta', 'fail'), (err: ActorCallError) => err.code === 'BOOM' && err.field === 'x');
  assert.equal(await env.sup.call('beta', 'echo', { value: 3 }), 3);
});

test('actors read time from the injected clock, shared across threads', async () => {
  const ctl = new SharedClockController(Date.UTC(2026, 0, 5, 15, 0));
  await using env = makeSupervisor({ warmSpares: false }, ctl.spec);
  await env.sup.start();
  assert.equal(await env.sup.call('alpha', 'now'), Date.UTC(2026, 0, 5, 15, 0));
  ctl.advance(90_000);
  await until(async () => (await env.sup.call('beta', 'now')) === Date.UTC(2026, 0, 5, 15, 1, 30), 'beta to see the new time');
  ctl.close();
});

test('stop lets every actor flush and leaves them stopped', async () => {
  await using env = makeSupervisor();
  await env.sup.start();
  await env.sup.call('alpha', 'add', { n: 1 });
  await env.sup.stop();
  assert.deepEqual(
    env.sup.list().map((a) => a.state),
    ['stopped', 'stopped'],
  );
});
