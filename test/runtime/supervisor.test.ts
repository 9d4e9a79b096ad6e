import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { open } from 'lmdb';
import pino from 'pino';
import { ManualClock } from '../../src/market/clock.ts';
import { Supervisor, type SupervisorPolicy } from '../../src/runtime/supervisor.ts';
import type { ActorCallError, RuntimeError } from '../../src/runtime/protocol.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import type { ClockSpec } from '../../src/runtime/clock.ts';
import { waitFor } from '../helpers/wait.ts';

const FIXTURE = new URL('../fixtures/counter-actor.ts', import.meta.url);
const silent = pino({ level: 'silent' });

function makeSupervisor(policy: Partial<SupervisorPolicy> = {}, clock: ClockSpec = { kind: 'real' }, supervisionClock?: ManualClock) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-sup-'));
  const sup = new Supervisor({
    ...(supervisionClock ? { supervisionClock } : {}),
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
    dir,
    info: (name: string) => sup.list().find((a) => a.name === name)!,
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

test("each actor thread reports its own heap and busy time in the supervisor's counters", async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  await until(() => env.sup.counters('alpha').heapUsedBytes > 0 && env.sup.counters('beta').heapUsedBytes > 0, 'the first heap samples');
  const alpha = env.sup.counters('alpha');
  assert.ok(alpha.heapUsedBytes > 1024 * 1024, `a V8 heap of ${alpha.heapUsedBytes} bytes`);
  assert.ok(alpha.externalBytes > 0);
  const busy = alpha.activeMs;
  assert.ok(busy > 0, 'the start kept the thread busy');
  // More work on alpha's thread: its busy time grows.
  for (let i = 0; i < 20; i++) await env.sup.call('alpha', 'echo', { value: { i } });
  await until(() => env.sup.counters('alpha').activeMs > busy, 'the busy time of the calls');
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

test('stop lets every actor flush, in reverse start order, and leaves them stopped', async () => {
  await using env = makeSupervisor();
  await env.sup.start();
  // Held in each actor's memory only: on disk after the stop only if each actor's stop() ran.
  assert.equal(await env.sup.call('alpha', 'remember', { value: 'alpha-unsaved' }), true);
  assert.equal(await env.sup.call('beta', 'remember', { value: { n: 2 } }), true);
  await env.sup.stop();
  assert.deepEqual(
    env.sup.list().map((a) => a.state),
    ['stopped', 'stopped'],
  );
  const db = open({ path: env.dir, readOnly: true });
  try {
    assert.deepEqual(db.get('flushed:beta'), { value: { n: 2 }, order: 0 }, 'beta, started last, stopped first');
    assert.deepEqual(db.get('flushed:alpha'), { value: 'alpha-unsaved', order: 1 });
  } finally {
    await db.close();
  }
});

test("restarts back off on the supervisor's clock: the initial delay, doubling per restart, capped, reset past the window", async () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 5, 15, 0));
  await using env = makeSupervisor({ backoffInitialMs: 20, backoffMaxMs: 50, maxRestarts: 10, restartWindowMs: 60_000 }, { kind: 'real' }, clock);
  await env.sup.start();
  const schedule: Array<[string, number]> = [
    ['first restart', 20],
    ['second', 40],
    ['third, capped', 50],
    ['fourth, capped', 50],
  ];
  const crashAndTime = async (what: string, delay: number) => {
    const before = env.info('alpha').restarts;
    await env.sup.crash('alpha');
    await until(() => env.info('alpha').state === 'restarting', `${what}: the supervisor to see the crash`);
    // Only this clock moves the restart: a millisecond short of the delay it has not happened.
    clock.advance(delay - 1);
    assert.equal(env.info('alpha').restarts, before, `${what}: not restarted before ${delay} ms`);
    assert.equal(env.info('alpha').state, 'restarting');
    clock.advance(1);
    assert.equal(env.info('alpha').restarts, before + 1, `${what}: restarted at ${delay} ms`);
    await env.sup.whenRunning('alpha');
  };
  for (const [what, delay] of schedule) await crashAndTime(what, delay);
  // Restarts older than the window no longer count: the next one waits the initial delay again.
  clock.advance(60_000);
  await crashAndTime('after the window', 20);
  assert.equal(env.info('beta').restarts, 0, 'the other actor was never restarted');
});

test('a restart takes the spare that was already booted, and the pool loads the next one', async () => {
  await using env = makeSupervisor();
  await env.sup.start();
  await until(() => env.sup.spare('alpha').state === 'ready', "alpha's spare to load");
  const spare = env.sup.spare('alpha').thread_id;
  const before = env.info('alpha');
  assert.ok(spare !== null && spare !== before.thread_id, 'the spare is a thread of its own');
  await env.sup.call('alpha', 'add', { n: 3 });
  await env.sup.crash('alpha');
  await until(() => env.info('alpha').restarts === 1, 'the restart');
  await env.sup.whenRunning('alpha');
  assert.equal(env.info('alpha').thread_id, spare, 'the new incarnation runs in the spare thread');
  const timing = env.sup.timings().find((t) => t.actor === 'alpha' && t.incarnation === 1);
  assert.ok(timing?.warm, 'the spare had loaded before the crash');
  assert.equal(timing?.wait_ms, 0, 'the restart waited for no load');
  assert.equal(await env.sup.call('alpha', 'total'), 3, 'and it serves from the checkpoint');
  await until(() => env.sup.spare('alpha').state === 'ready', 'the next spare to load');
  const next = env.sup.spare('alpha').thread_id;
  assert.ok(next !== null && next !== spare, 'a new spare waits for the next restart');
});

test('without warm spares no thread waits, and a restart loads its worker then', async () => {
  await using env = makeSupervisor({ warmSpares: false });
  await env.sup.start();
  assert.deepEqual(env.sup.spare('alpha'), { state: 'none', thread_id: null });
  await env.sup.crash('alpha');
  await until(() => env.info('alpha').restarts === 1, 'the restart');
  await env.sup.whenRunning('alpha');
  const timing = env.sup.timings().find((t) => t.actor === 'alpha' && t.incarnation === 1);
  assert.equal(timing?.warm, false);
  assert.deepEqual(env.sup.spare('alpha'), { state: 'none', thread_id: null });
});
