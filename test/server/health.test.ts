/**
 * GET /health while the collector is not keeping the bars current (issue 12, "slow peers hold
 * barkeep": a vendor that stalls held the collector's cycle with /health 200 and nothing said).
 * Every actor runs, so the engine serves and trades: 200, `status: "degraded"`, with the reason;
 * 503 stays for an actor that is not running.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { CollectorStatus } from '../../src/actors/collector/protocol.ts';
import { loadConfig } from '../../src/config/load.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import { startEngine } from '../../src/server/engine.ts';
import { collectorLag, type OverrunMemory } from '../../src/server/health.ts';
import { startFakeMassive } from '../fakes/massive/server.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0); // Monday 10:00 New York, in session
const MIN = 60_000;

function status(over: Partial<CollectorStatus>): CollectorStatus {
  return {
    is_running: true,
    symbols: ['QQQ'],
    bar_size: '1Min',
    api_type: 'Massive API',
    source: 'massive',
    preferred_source: 'massive',
    failover_reason: null,
    last_collection_times: {},
    is_trading_hours: true,
    next_cycle_at: null,
    cycles: 10,
    cycles_overrun: 0,
    cycle_started_at: null,
    bars_written: 0,
    errors: [],
    sources: {},
    mode: 'rest',
    streams: {},
    rate_budget: null,
    ...over,
  } as CollectorStatus;
}

test('a collection cycle under way past two collection intervals makes the collector degraded, not before', () => {
  const memory: OverrunMemory = { overruns: 0, cyclesAtOverrun: null };
  const started = new Date(T0).toISOString();
  assert.deepEqual(collectorLag(status({ cycle_started_at: started }), T0 + 2 * MIN, MIN, memory), []);
  const late = collectorLag(status({ cycle_started_at: started }), T0 + 2 * MIN + 1, MIN, memory);
  assert.equal(late.length, 1);
  assert.match(late[0], /^collector: the collection cycle under way started 120 s ago, longer than two collection intervals \(120 s\)/);
  // A cadence stretched to fit the vendor's rate limit is the interval the cycles keep.
  const stretched = { needed: 10, available: 5, requests_per_cycle: 10, interval_ms: 2 * MIN, stretched: true };
  assert.deepEqual(collectorLag(status({ cycle_started_at: started, rate_budget: stretched }), T0 + 4 * MIN, MIN, memory), []);
  // A stopped collector is expected to collect nothing.
  assert.deepEqual(collectorLag(status({ is_running: false, cycle_started_at: started }), T0 + 10 * MIN, MIN, memory), []);
});

test('an overrun cycle makes the collector degraded until a cycle completes, and a restarted collector starts afresh', () => {
  const memory: OverrunMemory = { overruns: 0, cyclesAtOverrun: null };
  assert.match(collectorLag(status({ cycles: 10, cycles_overrun: 1 }), T0, MIN, memory).join(), /a collection cycle overran its deadline \(1 so far\) and none has completed since/);
  assert.equal(collectorLag(status({ cycles: 10, cycles_overrun: 1 }), T0 + MIN, MIN, memory).length, 1, 'still none completed');
  assert.deepEqual(collectorLag(status({ cycles: 11, cycles_overrun: 1 }), T0 + 2 * MIN, MIN, memory), [], 'a cycle completed since');
  assert.equal(collectorLag(status({ cycles: 11, cycles_overrun: 2 }), T0 + 3 * MIN, MIN, memory).length, 1, 'a second overrun');
  // The restarted collector counts from zero: its earlier overruns are not held against it.
  assert.deepEqual(collectorLag(status({ cycles: 0, cycles_overrun: 0 }), T0 + 4 * MIN, MIN, memory), []);
});

test('slow peers hold barkeep: /health is 200 degraded while a stalled vendor holds the cycle and after it overran, ok once a cycle completes', async (t) => {
  const fake = await startFakeMassive({ validKeys: ['test-key'], generate: true });
  const clock = new SharedClockController(T0);
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-health-'));
  t.after(async () => {
    clock.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = loadConfig({
    env: { MASSIVE_API_KEY: 'test-key' },
    overrides: {
      data_dir: dir,
      server: { port: 0 },
      log: { level: 'silent' },
      massive: { rest_url: fake.url, rate_limit_per_min: 1000, timeout_ms: 30_000 },
      collector: { symbols: ['QQQ'], backfill_days: 1 },
      trader: { autostart: false },
    },
  });
  // The first cycle's request is held (real time) by the vendor: the cycle stays under way.
  fake.slowNext(1, 60_000);
  const engine = await startEngine(config, { log: pino({ level: 'silent' }), clock: clock.spec });
  t.after(() => engine.stop());
  const get = async (path: string) => {
    const r = await fetch(`${engine.url}${path}`);
    return { code: r.status, body: (await r.json()) as { status: string; reasons: string[] } & Partial<CollectorStatus> };
  };
  const until = async (cond: () => Promise<boolean>, what: string) => {
    const end = Date.now() + 20_000;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  // The first cycle is due at once; the shared clock runs it when it moves.
  await until(async () => (await get('/data-collector/status')).body.next_cycle_at !== null, 'the first cycle to be scheduled');
  clock.advance(0);
  await until(async () => fake.inFlight === 1 && (await get('/data-collector/status')).body.cycle_started_at !== null, 'the cycle at the stalled vendor');
  // /health judges the latest status it has and asks for the next one: poll until it has this one.
  const healthUntil = async (pattern: RegExp, what: string) => {
    let last: Awaited<ReturnType<typeof get>> | undefined;
    await until(async () => {
      last = await get('/health');
      return pattern.test(JSON.stringify(last.body));
    }, what);
    return last!;
  };
  // Two looks: the second judges the status the first asked for (the cycle under way, just started).
  await get('/health');
  await until(async () => (await get('/data-collector/status')).body.cycle_started_at !== null, 'the status again');
  assert.deepEqual((await get('/health')).body, { status: 'ok', reasons: [] }, 'a cycle just started is no lag');

  clock.advance(2 * MIN + 1);
  const held = await healthUntil(/under way started 120 s ago/, 'health to see the held cycle');
  assert.equal(held.code, 200, 'every actor runs: the engine serves');
  assert.equal(held.body.status, 'degraded');
  assert.match(held.body.reasons.join(), /collector: the collection cycle under way started 120 s ago/);

  // Past the cycle's deadline (10 minutes) the cycle is aborted and counted: still degraded.
  clock.advance(10 * MIN);
  await until(async () => (await get('/data-collector/status')).body.cycles_overrun === 1, 'the overrun counted');
  const overran = await healthUntil(/overran its deadline/, 'health to see the overrun');
  assert.equal(overran.code, 200);
  assert.match(overran.body.reasons.join(), /a collection cycle overran its deadline \(1 so far\) and none has completed since/);
  assert.doesNotMatch(overran.body.reasons.join(), /under way/, 'the aborted cycle is no longer under way');

  // The vendor answers again: the next cycle completes and the collector is healthy.
  const next = (await get('/data-collector/status')).body.next_cycle_at;
  assert.ok(next, 'the schedule goes on');
  clock.set(Date.parse(next));
  await until(async () => (await get('/health')).body.status === 'ok', 'a completed cycle to clear the overrun');
  assert.equal((await get('/health')).code, 200);
});
