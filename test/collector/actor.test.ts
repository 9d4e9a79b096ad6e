/**
 * The collector actor in its own worker thread, started by the real Supervisor, collecting from the
 * Massive fake. Time is a shared manual clock the test moves; the collector has no peers, so its
 * arbiter link drops the bars-written messages.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { BackfillJob, CollectorConfig, CollectorRequests, CollectorStatus } from '../../src/actors/collector/protocol.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import { ActorCallError } from '../../src/runtime/protocol.ts';
import { type ActorHandle, Supervisor } from '../../src/runtime/supervisor.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { generatedBars } from '../fakes/massive/generated-bars.ts';
import { type FakeMassive, startFakeMassive } from '../fakes/massive/server.ts';
import { DAY, MIN, iso, values } from './support.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = 'actor-test-massive-key-9090';
const T0 = Date.parse('2026-03-11T15:00:03Z');
const COLLECTOR = new URL('../../src/actors/collector/actor.ts', import.meta.url);

let dir: string;
let clock: SharedClockController;
let fake: FakeMassive;
let sup: Supervisor;
let collector: ActorHandle<CollectorRequests>;

function config(): CollectorConfig {
  return {
    dataDir: dir,
    storage: { retentionDays: {}, sourcePrecedence: ['massive', 'ibkr-historical', 'ibkr-realtime', 'alpaca', 'sim'], pruneIntervalS: 3600 },
    autostart: null,
    schedule: { marketHoursIntervalMs: 60_000, offHoursIntervalMs: 300_000, settleMs: 3_000 },
    backfillDays: 1,
    failoverAfterFailures: 3,
    retryPreferredAfterMs: 300_000,
    massive: { apiKey: KEY, restUrl: fake.url, rateLimitPerMin: 100, timeoutMs: 5_000, websocket: false, wsUrl: 'ws://127.0.0.1:9' },
    alpaca: null,
    sim: { seed: 1, session: 'always' },
  };
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-collector-actor-'));
  clock = new SharedClockController(T0);
  fake = await startFakeMassive({ validKeys: [KEY], clock: clock.clock, generate: true });
  sup = new Supervisor({
    actors: [{ name: 'collector', module: COLLECTOR, config: config() }],
    clock: clock.spec,
    log: pino({ level: 'silent' }),
    logLevel: 'silent',
    faults: true,
    policy: { warmSpares: false, backoffInitialMs: 20 },
  });
  await sup.start();
  collector = sup.handle<CollectorRequests>('collector');
});

after(async () => {
  await sup?.stop();
  clock?.close();
  await fake?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Polls the actor (real time) until `cond` holds; the deadline only stops a hang. */
async function poll<T>(get: () => Promise<T>, cond: (v: T) => boolean, what: string): Promise<T> {
  const hit = await waitFor(
    async () => {
      const v = await get();
      return cond(v) && { v };
    },
    { what, timeoutMs: 15_000, intervalMs: 20 },
  );
  return hit.v;
}

const status = () => collector.call('status', {}) as Promise<CollectorStatus>;

function refused(field: string, code = 'BAD_REQUEST') {
  return (err: unknown) => {
    assert.ok(err instanceof ActorCallError, `an ActorCallError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.field, field);
    return true;
  };
}

async function readBars(symbol: string) {
  const storage = openStorage({ path: dir });
  try {
    return storage.bars.range(symbol, '1Min', 0, Number.MAX_SAFE_INTEGER);
  } finally {
    await storage.close();
  }
}

describe('collector actor in a worker thread', () => {
  test('it starts idle on the Massive source the config names, and refuses bad requests naming the field', async () => {
    const s = await status();
    assert.equal(s.is_running, false);
    assert.equal(s.api_type, 'Massive API');
    assert.equal(s.source, 'massive');
    await assert.rejects(sup.call('collector', 'start', { symbols: ['QQQ', 'not a symbol'], bar_size: '1Min' }), refused('symbols.1'));
    await assert.rejects(sup.call('collector', 'start', { symbols: [], bar_size: '1Min' }), refused('symbols'));
    await assert.rejects(sup.call('collector', 'start', { symbols: ['QQQ'], bar_size: '2Min' }), refused('bar_size'));
    await assert.rejects(sup.call('collector', 'backfill', { symbol: 'QQQ', bar_size: '1Min', from: T0, to: T0 - DAY }), refused('from'));
    assert.equal((await status()).is_running, false, 'nothing started');
    assert.equal(fake.requests, 0);
  });

  test('start collects on the shared clock; the bars land in the cache, and the key is nowhere in status', async () => {
    const started = await collector.call('start', { symbols: ['QQQ'], bar_size: '1Min' });
    assert.equal(started.is_running, true);
    assert.equal(started.next_cycle_at, iso(T0));
    clock.advance(0); // the worker's timers fire when the shared time is published
    const s = await poll(status, (v) => v.cycles === 1, 'the first cycle');
    assert.equal(s.last_collection_times.QQQ, iso(T0));
    assert.ok(!JSON.stringify(s).includes(KEY));
    const expected = generatedBars('QQQ', '1Min', T0 - DAY, T0 - (T0 % MIN) - 1, 'massive');
    assert.deepEqual(values(await readBars('QQQ')), values(expected));
  });

  test('after a crash the restarted collector resumes running and asks only from its coverage', async () => {
    await sup.crash('collector');
    await poll(
      async () => sup.list()[0],
      (a) => a.restarts === 1 && a.state === 'running',
      'the restart',
    );
    const s = await status();
    assert.equal(s.is_running, true, 'the running intent came back from the checkpoint');
    assert.deepEqual(s.symbols, ['QQQ']);
    assert.equal(s.cycles, 0, 'a new incarnation');

    const requests = fake.requests;
    clock.advance(MIN);
    await poll(status, (v) => v.cycles === 1, 'the first cycle after the restart');
    assert.equal(fake.requests, requests + 1);
    const last = fake.log.at(-1)!;
    const open = T0 - (T0 % MIN);
    assert.match(last.path, new RegExp(`/${open - 15 * MIN}/${open + MIN - 1}$`), 'the refetch window behind its coverage, not a day');
    assert.equal((await readBars('QQQ')).at(-1)!.start, open);
  });

  test('backfill fills a span in the background and reports its progress', async () => {
    const from = T0 - 3 * DAY;
    const to = T0 - 2 * DAY;
    const job = await collector.call('backfill', { symbol: 'SPY', bar_size: '1Min', from, to });
    assert.equal(job.symbol, 'SPY');
    const done = (await poll(
      () => collector.call('backfillStatus', {}),
      (j) => j?.state !== 'running',
      'the backfill',
    )) as BackfillJob;
    assert.equal(done.state, 'done');
    assert.equal(done.progress, 1);
    const expected = generatedBars('SPY', '1Min', from, to - 1, 'massive');
    assert.equal(done.bars_written, expected.length);
    assert.deepEqual(values(await readBars('SPY')), values(expected));
  });

  test('stop stops collecting and says so', async () => {
    const s = await collector.call('stop', {});
    assert.equal(s.is_running, false);
    assert.equal(s.next_cycle_at, null);
  });
});
