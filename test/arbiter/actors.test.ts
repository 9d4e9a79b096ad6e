import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { lastDeliveredKey } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterRequests } from '../../src/actors/arbiter/protocol.ts';
import type { CollectorRequests } from '../../src/actors/collector/protocol.ts';
import { loadConfig } from '../../src/config/load.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import { Supervisor } from '../../src/runtime/supervisor.ts';
import { actorConfigs } from '../../src/config/actor-configs.ts';
import { openStorage } from '../../src/storage/storage.ts';
import type { Received, TraderPeerRequests } from '../fixtures/arbiter-trader-peer.ts';
import { waitFor } from '../helpers/wait.ts';

const MIN = 60_000;
const SYMBOLS = ['QQQ', 'SPY'];
const T0 = Date.UTC(2026, 0, 5, 15, 0, 5);
const silent = pino({ level: 'silent' });

const until = <T>(cond: () => Promise<T | false | undefined> | T | false | undefined, what: string, timeoutMs = 10_000): Promise<T> => waitFor(cond, { what, timeoutMs });

function engine() {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-e2e-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      log: { level: 'silent' },
      runtime: { faults: true },
      collector: { autostart: true, symbols: SYMBOLS, bar_size: '1Min', backfill_days: 1 },
      feed: { preload_bars: 20 },
    },
  });
  const cfg = actorConfigs(config);
  const ctl = new SharedClockController(T0);
  const sup = new Supervisor({
    actors: [
      { name: 'collector', module: new URL('../../src/actors/collector/actor.ts', import.meta.url), config: cfg.collector, peers: ['arbiter'] },
      { name: 'arbiter', module: new URL('../../src/actors/arbiter/actor.ts', import.meta.url), config: cfg.arbiter, peers: ['collector', 'trader'] },
      { name: 'trader', module: new URL('../fixtures/arbiter-trader-peer.ts', import.meta.url), config: {}, peers: ['arbiter'] },
    ],
    clock: ctl.spec,
    log: silent,
    logLevel: 'silent',
    faults: true,
    // A restart slow enough that the collector writes while the arbiter is down.
    policy: { backoffInitialMs: 300, warmSpares: true },
  });
  // The main thread's own view of the cache, as the HTTP server has.
  const storage = openStorage({ path: dir });
  return {
    dir,
    ctl,
    sup,
    storage,
    collector: sup.handle<CollectorRequests>('collector'),
    arbiter: sup.handle<ArbiterRequests>('arbiter'),
    trader: sup.handle<TraderPeerRequests>('trader'),
    async [Symbol.asyncDispose]() {
      await sup.stop();
      await storage.close();
      ctl.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Engine = ReturnType<typeof engine>;

/** Moves the shared clock a minute on and runs a collection cycle once the collector sees the new time. */
async function nextMinute(e: Engine): Promise<void> {
  e.ctl.advance(MIN);
  const now = new Date(e.ctl.now()).toISOString();
  await until(async () => {
    const st = await e.collector.call('collectNow', {});
    return SYMBOLS.every((s) => st.last_collection_times[s] === now);
  }, `a collection at ${now}`);
}

/** The bars the cache holds after the warm-up, per symbol: what the trader must get live, once each. */
function liveBarsInCache(e: Engine, got: Received, symbol: string): number[] {
  const warm = got.warmups.find((w) => w.symbol === symbol)!;
  e.storage.bars.refresh();
  return e.storage.bars.range(symbol, '1Min', warm.starts[warm.starts.length - 1] + 1, e.ctl.now()).map((b) => b.start);
}

async function receivedAll(e: Engine): Promise<Received> {
  return until(async () => {
    const got = await e.trader.call('received', {});
    if (got.warmups.length < SYMBOLS.length) return false;
    return (
      SYMBOLS.every((s) => {
        const want = liveBarsInCache(e, got, s);
        const have = got.bars.filter((b) => b.symbol === s);
        return want.length > 0 && have.length >= want.length && have[have.length - 1].start === want[want.length - 1];
      }) && got
    );
  }, 'the trader to get every cached bar');
}

function assertOnceInOrder(e: Engine, got: Received): void {
  for (const symbol of SYMBOLS) {
    const live = got.bars.filter((b) => b.symbol === symbol).map((b) => b.start);
    for (let i = 1; i < live.length; i++) assert.ok(live[i] > live[i - 1], `${symbol}: ${new Date(live[i]).toISOString()} after ${new Date(live[i - 1]).toISOString()}`);
    assert.deepEqual(live, liveBarsInCache(e, got, symbol), `${symbol}: every cached bar after the warm-up, once, in order`);
  }
}

test('collector, arbiter and a trader peer in their threads: each bar reaches the trader once, in order, across an arbiter crash', async () => {
  await using e = engine();
  await e.sup.start();
  await e.trader.call('subscribe', { symbols: SYMBOLS, barSize: '1Min' });
  // The first cycle, at the start time every thread agrees on, backfills the day; the arbiter
  // warms the trader up from it.
  await e.collector.call('collectNow', {});
  const warm = await until(async () => {
    const got = await e.trader.call('received', {});
    return got.warmups.length === SYMBOLS.length && got;
  }, 'the warm-ups');
  for (const w of warm.warmups) {
    assert.equal(w.starts.length, 20, `${w.symbol}: feed.preload_bars bars`);
    assert.ok(w.starts.every((s, i) => i === 0 || s > w.starts[i - 1]));
  }
  assert.equal(warm.bars.length, 0, 'nothing live yet: the warm-up is what the cache had');

  for (let m = 0; m < 4; m++) await nextMinute(e);
  let got = await receivedAll(e);
  assertOnceInOrder(e, got);
  const status = await e.arbiter.call('status', {});
  for (const s of SYMBOLS) assert.equal(status.feed[s].rung, 'cache');
  assert.ok(got.feeds.some((f) => f.symbol === 'QQQ' && f.rung === 'cache'));

  // The arbiter crashes mid-stream; let its last position reach LMDB first, as it does within
  // a millisecond of a bar (a later write resolving means the earlier ones are committed).
  const last = got.bars.filter((b) => b.symbol === 'QQQ').at(-1)!.start;
  await until(() => e.storage.checkpoints.get<number>(lastDeliveredKey('1Min', 'QQQ')) === last, 'the arbiter checkpoint');
  await e.sup.crash('arbiter');
  await until(() => e.sup.list().find((a) => a.name === 'arbiter')!.state === 'restarting', 'the crash');
  // The collector writes while no arbiter runs: its notice is lost, the bar is in the cache.
  await nextMinute(e);
  await e.sup.whenRunning('arbiter');
  assert.equal(e.sup.list().find((a) => a.name === 'arbiter')!.restarts, 1);
  // A few seconds on: a notice the collector sent while the links were being rewired is caught up
  // by the arbiter's tick.
  e.ctl.advance(6_000);
  got = await receivedAll(e);
  assertOnceInOrder(e, got);

  for (let m = 0; m < 3; m++) await nextMinute(e);
  got = await receivedAll(e);
  assertOnceInOrder(e, got);
  assert.equal(got.warmups.length, SYMBOLS.length, 'the restarted arbiter did not warm the trader up again');
  const after = await e.arbiter.call('status', {});
  assert.deepEqual(after.symbols, SYMBOLS);
  for (const s of SYMBOLS) assert.equal(after.feed[s].rung, 'cache');
});
