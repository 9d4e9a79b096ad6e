import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Arbiter, type ArbiterOptions, type IbkrFeedPort } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import { BAR_SOURCE_CODE, type Bar, type BarSource } from '../../src/market/bar.ts';
import { BarWriter } from '../../src/actors/collector/bar-writer.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import { waitFor } from '../helpers/wait.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const S = (m: number) => T0 + m * MIN;
const silent = pino({ level: 'silent' });

function mkBar(symbol: string, start: number, source: BarSource = 'sim'): Bar {
  const p = 100 + ((start / MIN) % 50) / 10;
  return { symbol, barSize: '1Min', start, open: p, high: p + 0.2, low: p - 0.2, close: p + 0.1, volume: 1_000, vwap: p, trades: 12, source, receivedAt: start + MIN };
}

/** IBKR as the arbiter sees it: real-time subscriptions noted, history served from bars we prepare. */
class VendorIbkr implements IbkrFeedPort {
  up = true;
  subscribed = new Set<string>();
  historicalCalls: Array<{ symbol: string; from: number; to: number }> = [];
  /** Bars the vendor has, by symbol; fetchHistorical serves those in [from, to]. */
  history = new Map<string, Bar[]>();
  gate: Promise<void> | null = null;
  fail: Error | null = null;
  subscribeRealtime(symbol: string): void {
    this.subscribed.add(symbol);
  }
  unsubscribe(symbol: string): void {
    this.subscribed.delete(symbol);
  }
  connected(): boolean {
    return this.up;
  }
  async fetchHistorical(symbol: string, _size: BarSize, from: number, to: number): Promise<Bar[]> {
    this.historicalCalls.push({ symbol, from, to });
    if (this.gate) await this.gate;
    if (this.fail) throw this.fail;
    return (this.history.get(symbol) ?? []).filter((b) => b.start >= from && b.start <= to);
  }
}

interface Rig {
  dir: string;
  storage: Storage;
  clock: ManualClock;
  got: ArbiterToTrader[];
  arbiter: Arbiter;
  ibkr: VendorIbkr | null;
  /** The collector: writes bars to the cache, then tells the arbiter their keys. */
  collect(symbol: string, starts: number[]): Promise<void>;
  /** Starts of the live bars the trader received for a symbol, in order. */
  delivered(symbol?: string): number[];
  newArbiter(over?: Partial<ArbiterOptions>): { arbiter: Arbiter; got: ArbiterToTrader[] };
  [Symbol.asyncDispose](): Promise<void>;
}

function rig(opts: { ibkr?: boolean; preloadBars?: number; over?: Partial<ArbiterOptions> } = {}): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-arbiter-'));
  const storage = openStorage({ path: dir });
  const clock = new ManualClock(T0);
  const ibkr = opts.ibkr ? new VendorIbkr() : null;
  const arbiters: Arbiter[] = [];
  const make = (got: ArbiterToTrader[], over: Partial<ArbiterOptions> = {}) => {
    const a = new Arbiter({
      store: storage.bars,
      checkpoints: storage.checkpoints,
      clock,
      log: silent,
      cacheMaxAgeMs: 5 * MIN,
      preloadBars: opts.preloadBars ?? 5,
      climbBackAfterBars: 3,
      historicalPollMs: MIN,
      ibkr,
      // What crosses to the trader is a clone, as postMessage makes.
      send: (m) => got.push(structuredClone(m)),
      ...opts.over,
      ...over,
    });
    arbiters.push(a);
    return a;
  };
  const got: ArbiterToTrader[] = [];
  const r: Rig = {
    dir,
    storage,
    clock,
    got,
    ibkr,
    arbiter: make(got),
    async collect(symbol, starts) {
      await storage.bars.putMany(starts.map((s) => mkBar(symbol, s)));
      r.arbiter.onBarsWritten('1Min', symbol, starts);
    },
    delivered: (symbol = 'QQQ') => barsOf(r.got, symbol),
    newArbiter(over) {
      const g: ArbiterToTrader[] = [];
      return { arbiter: make(g, over), got: g };
    },
    async [Symbol.asyncDispose]() {
      for (const a of arbiters) await a.shutdown();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return r;
}

function barsOf(got: ArbiterToTrader[], symbol = 'QQQ'): number[] {
  return got.flatMap((m) => (m.type === 'bar' && m.symbol === symbol ? [m.start] : []));
}

function warmupsOf(got: ArbiterToTrader[], symbol = 'QQQ'): number[][] {
  return got.flatMap((m) => (m.type === 'warmup' && m.symbol === symbol ? [m.starts] : []));
}

const until = (cond: () => boolean, what: string) => waitFor(cond, { what, timeoutMs: 5_000, intervalMs: 2 });

function assertInOrderOnce(starts: number[]): void {
  for (let i = 1; i < starts.length; i++) {
    assert.ok(starts[i] > starts[i - 1], `bar ${new Date(starts[i]).toISOString()} came after ${new Date(starts[i - 1]).toISOString()}`);
  }
}

/** Fills the cache with the minutes [fromMin, toMin] before the arbiter hears of anything. */
async function prefill(r: Rig, fromMin: number, toMin: number, symbol = 'QQQ'): Promise<void> {
  const bars: Bar[] = [];
  for (let m = fromMin; m <= toMin; m++) bars.push(mkBar(symbol, S(m)));
  await r.storage.bars.putMany(bars);
}

test('warm-up sends the last N cached bars and live delivery starts strictly after them', async () => {
  await using r = rig({ preloadBars: 5 });
  await prefill(r, -20, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  assert.deepEqual(warmupsOf(r.got), [[S(-5), S(-4), S(-3), S(-2), S(-1)]]);
  assert.deepEqual(r.delivered(), [], 'no warm-up bar is handed on again as live');
  // Without IBKR the fresh cache, the only live rung, serves from the warm-up on: the first live
  // bar pays no switch.
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  assert.match(r.arbiter.status().feed.QQQ.unavailable.preload ?? '', /warm-up delivered/);
  const switches = () => r.got.filter((m) => m.type === 'feed').length;
  assert.equal(switches(), 1);
  // The collector's refetch window names old keys again: they are not news.
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(-3), S(-2), S(-1), S(0)]);
  assert.deepEqual(r.delivered(), [S(0)]);
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  assert.equal(switches(), 1, 'the first live bar switched nothing');
});

test('cache bars written by the collector are handed on once each, in order', async () => {
  await using r = rig();
  await prefill(r, -10, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  for (let m = 0; m < 12; m++) {
    r.clock.set(S(m + 1) + 3_000);
    // Each cycle re-asks the last few minutes, as the collector's refetch window does.
    await r.collect('QQQ', [S(m - 2), S(m - 1), S(m)]);
    await r.collect('QQQ', [S(m)]);
  }
  // A cycle that catches up several minutes at once.
  r.clock.set(S(15) + 3_000);
  await r.collect('QQQ', [S(12), S(13), S(14)]);
  const want = Array.from({ length: 15 }, (_, m) => S(m));
  assert.deepEqual(r.delivered(), want);
  assert.ok(r.got.every((m) => m.type !== 'bar' || (m.barSize === '1Min' && m.source === 'sim')));
  assert.equal(r.arbiter.status().feed.QQQ.last_bar_time, new Date(S(14)).toISOString());
});

test("the collector's notice names the source the cache holds: a bar kept out by a better source is handed on as that source's", async () => {
  await using r = rig();
  await prefill(r, -10, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  // massive holds minute 0; the collector (on alpaca) writes minutes 0 and 1 through its writer.
  await r.storage.bars.put(mkBar('QQQ', S(0), 'massive'));
  const notices: Array<{ starts: number[]; sources?: number[] }> = [];
  const writer = new BarWriter(r.storage.bars, (_size, _symbol, starts, sources) => notices.push({ starts, sources }));
  r.clock.set(S(2) + 3_000);
  await writer.write('QQQ', '1Min', [mkBar('QQQ', S(0), 'alpaca'), mkBar('QQQ', S(1), 'alpaca')], () => assert.fail('no bar is invalid'));
  assert.deepEqual(notices, [{ starts: [S(0), S(1)], sources: [BAR_SOURCE_CODE.massive, BAR_SOURCE_CODE.alpaca] }]);
  // One notice per key, as a stream delivers them minute by minute.
  r.arbiter.onBarsWritten('1Min', 'QQQ', notices[0].starts, 0, 1, notices[0].sources);
  r.arbiter.onBarsWritten('1Min', 'QQQ', notices[0].starts, 1, 2, notices[0].sources);
  const handed = r.got.flatMap((m) => (m.type === 'bar' ? [[m.start, m.source]] : []));
  assert.deepEqual(handed, [
    [S(0), 'massive'],
    [S(1), 'alpaca'],
  ]);
});

test('a cache bar whose notice never came is handed on at the next tick', async () => {
  await using r = rig();
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(0)]);
  // Written while the collector's notices went nowhere (the arbiter was being rewired).
  r.clock.set(S(2) + 3_000);
  await r.storage.bars.putMany([mkBar('QQQ', S(1))]);
  assert.deepEqual(r.delivered(), [S(0)]);
  r.clock.advance(5_000);
  assert.deepEqual(r.delivered(), [S(0), S(1)]);
  r.clock.set(S(3) + 3_000);
  await r.collect('QQQ', [S(1), S(2)]);
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2)]);
});

test('a bar for a symbol or bar size the trader did not subscribe to is ignored', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  const before = r.got.length;
  r.clock.set(S(1) + 2_000);
  await r.arbiter.onRealtimeBar(mkBar('SPY', S(0), 'ibkr-realtime'));
  assert.equal(r.storage.bars.get('SPY', '1Min', S(0)), undefined, 'not even written');
  await r.storage.bars.putMany([mkBar('SPY', S(0))]);
  r.arbiter.onBarsWritten('1Min', 'SPY', [S(0)]);
  r.arbiter.onBarsWritten('5Min', 'QQQ', [S(0)]);
  r.arbiter.onRealtimeDown('SPY', 'IBKR error 420');
  assert.equal(r.got.length, before);
  assert.deepEqual(Object.keys(r.arbiter.status().feed), ['QQQ']);
});

test('real-time bars serve, and a 420 moves the symbol to the cache within one bar interval', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  assert.ok(r.ibkr!.subscribed.has('QQQ'), 'real-time bars were asked for');
  for (let m = 0; m < 3; m++) {
    r.clock.set(S(m + 1) + 2_000);
    await r.arbiter.onRealtimeBar(mkBar('QQQ', S(m), 'ibkr-realtime'));
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
  }
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'ibkr-realtime');
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2)]);
  assert.ok(r.got.filter((m) => m.type === 'bar').every((m) => m.type === 'bar' && m.source === 'ibkr-realtime'));

  // Minute 3 closes; TWS refuses the subscription before its bar comes.
  const at420 = S(4) + 1_000;
  r.clock.set(at420);
  r.arbiter.onIbkrError(420);
  r.arbiter.onRealtimeDown('QQQ', 'IBKR error 420: no market data permissions');
  const st = r.arbiter.status().feed.QQQ;
  assert.equal(st.rung, 'cache');
  assert.equal(st.since, new Date(at420).toISOString());
  assert.match(st.reason, /ibkr-realtime down: IBKR error 420/);
  assert.match(st.unavailable['ibkr-realtime'] ?? '', /420/);
  assert.match(st.unavailable.preload ?? '', /warm-up delivered/);
  const feedMsg = r.got.findLast((m) => m.type === 'feed');
  assert.deepEqual(feedMsg, { type: 'feed', symbol: 'QQQ', rung: 'cache', reason: st.reason });
  // The collector's write of minute 3, within the same bar interval, reaches the trader.
  r.clock.set(S(4) + 3_000);
  await r.collect('QQQ', [S(3)]);
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3)]);
  assert.equal(r.arbiter.status().ibkr.errors['420'], 1);
  assert.ok(r.arbiter.metrics().some((s) => s.name === 'barkeep_ibkr_errors_total' && s.labels.code === '420' && s.value === 1));
});

test('real-time bars coming back climb back only after climbBackAfterBars fresh bars', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.clock.set(S(0) + 1_000);
  r.arbiter.onRealtimeDown('QQQ', 'IBKR error 354: not subscribed');
  const rungAt: Array<string | null> = [];
  for (let m = 0; m < 6; m++) {
    // Real-time bars again from minute 2 on.
    if (m >= 2) {
      r.clock.set(S(m + 1) + 2_000);
      await r.arbiter.onRealtimeBar(mkBar('QQQ', S(m), 'ibkr-realtime'));
    }
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
    rungAt.push(r.arbiter.status().feed.QQQ.rung);
    if (m === 3) assert.equal(r.arbiter.status().feed.QQQ.unavailable['ibkr-realtime'], 'up, 2/3 fresh bars before climbing back');
  }
  assert.deepEqual(rungAt, ['cache', 'cache', 'cache', 'cache', 'ibkr-realtime', 'ibkr-realtime']);
  assert.match(r.arbiter.status().feed.QQQ.reason, /climbing back/);
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3), S(4), S(5)]);
});

test('across scripted switches the trader gets every stored bar once, in order, with no hole', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  const rtMiss = new Set([3, 4, 9]); // minutes real-time bars never brought
  const colLate = new Set([7, 8, 20]); // minutes the collector wrote one cycle late
  let rtDown = false;
  let late: number[] = [];
  const rungs: Array<string | null> = [];
  for (let m = 0; m < 30; m++) {
    if (m === 10 || m === 22) {
      r.clock.set(S(m + 1) + 1_000);
      if (m === 10) r.arbiter.onRealtimeDown('QQQ', 'IBKR error 420: no market data permissions');
      else r.arbiter.onRealtimeDown('QQQ', 'no real-time bar for 15 s', true);
      rtDown = true;
    }
    if (m === 15 || m === 25) rtDown = false;
    if (!rtDown && !rtMiss.has(m)) {
      r.clock.set(S(m + 1) + 2_000);
      await r.arbiter.onRealtimeBar(mkBar('QQQ', S(m), 'ibkr-realtime'));
    }
    r.clock.set(S(m + 1) + 3_000);
    late.push(S(m));
    if (!colLate.has(m)) {
      await r.collect('QQQ', late);
      late = [];
    }
    rungs.push(r.arbiter.status().feed.QQQ.rung);
  }
  const stored = r.storage.bars.range('QQQ', '1Min', S(0), S(29)).map((b) => b.start);
  assert.equal(stored.length, 30);
  const got = r.delivered();
  assertInOrderOnce(got);
  assert.deepEqual(got, stored);
  // The ladder went realtime -> cache -> realtime -> cache -> realtime.
  const switches = r.got.flatMap((m) => (m.type === 'feed' ? [m.rung] : []));
  assert.deepEqual(switches, ['preload', 'ibkr-realtime', 'cache', 'ibkr-realtime', 'cache', 'ibkr-realtime']);
  assert.equal(rungs[16], 'cache', 'two fresh real-time bars are not enough');
  assert.equal(rungs[17], 'ibkr-realtime');

  const metrics = r.arbiter.metrics();
  const value = (name: string, labels: Record<string, string> = {}) => metrics.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  assert.equal(value('barkeep_feed_switches_total', { symbol: 'QQQ', from: 'ibkr-realtime', to: 'cache' }), 2);
  assert.equal(value('barkeep_feed_switches_total', { symbol: 'QQQ', from: 'cache', to: 'ibkr-realtime' }), 2);
  assert.equal(value('barkeep_feed_switches_total', { symbol: 'QQQ', from: 'preload', to: 'ibkr-realtime' }), 1);
  assert.equal(value('barkeep_feed_stalls_total'), 1);
  // Minutes 3 and 4 (real-time missed them, the cache had them) and 9 (handed on at the 420).
  assert.equal(value('barkeep_feed_holes_filled_total'), 3);
  assert.equal(value('barkeep_feed_rung', { symbol: 'QQQ' }), 0);
  assert.equal(r.arbiter.status().switches, 6);
});

test('the connection dropping hands over to the cache, and after it comes back the symbol climbs back', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.clock.set(S(1) + 2_000);
  await r.arbiter.onRealtimeBar(mkBar('QQQ', S(0), 'ibkr-realtime'));
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'ibkr-realtime');
  r.ibkr!.up = false;
  r.arbiter.onIbkrConnection('disconnected');
  let st = r.arbiter.status();
  assert.equal(st.ibkr.connection, 'disconnected');
  assert.equal(st.feed.QQQ.rung, 'cache');
  assert.equal(st.feed.QQQ.unavailable['ibkr-realtime'], 'IBKR connection disconnected');
  for (let m = 1; m < 3; m++) {
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
  }
  r.ibkr!.up = true;
  r.arbiter.onIbkrConnection('connected');
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache', 'history below the cache does not take over');
  for (let m = 3; m < 6; m++) {
    r.clock.set(S(m + 1) + 2_000);
    await r.arbiter.onRealtimeBar(mkBar('QQQ', S(m), 'ibkr-realtime'));
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
  }
  st = r.arbiter.status();
  assert.equal(st.feed.QQQ.rung, 'ibkr-realtime');
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3), S(4), S(5)]);
});

test('a silent real-time subscription reported as a stall is left for the cache and counted', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.clock.set(S(1) + 2_000);
  await r.arbiter.onRealtimeBar(mkBar('QQQ', S(0), 'ibkr-realtime'));
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(0)]);
  r.clock.set(S(2) + 15_000);
  r.arbiter.onRealtimeDown('QQQ', 'silent for 3 intervals of 5 s', true);
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  assert.match(r.arbiter.status().feed.QQQ.reason, /silent/);
  // The minute the silent subscription never brought was in the cache already: handed on at the switch.
  await r.collect('QQQ', [S(1)]);
  assert.deepEqual(r.delivered(), [S(0), S(1)]);
  assert.equal(r.arbiter.metrics().find((s) => s.name === 'barkeep_feed_stalls_total')?.value, 1);
});

test('the cache going stale hands over to IBKR history, which is polled and delivers', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  const vendor: Bar[] = [];
  for (let m = -5; m < 30; m++) vendor.push(mkBar('QQQ', S(m), 'ibkr-historical'));
  r.ibkr!.history.set('QQQ', vendor);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  // No real-time permissions: the cache serves while the collector writes.
  r.arbiter.onRealtimeDown('QQQ', 'IBKR error 420');
  for (let m = 0; m < 2; m++) {
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
  }
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  assert.equal(r.ibkr!.historicalCalls.length, 0, 'history is not asked while the cache serves');
  // The collector stops. The newest cached bar (minute 1) ended at S(2); stale from S(7) on.
  r.clock.set(S(7) - 1_000);
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  r.clock.set(S(7) + 5_000);
  const st = r.arbiter.status().feed.QQQ;
  assert.equal(st.rung, 'ibkr-historical');
  assert.match(st.reason, /cache down: stale/);
  assert.match(st.unavailable.cache ?? '', /stale/);
  await until(() => r.delivered().length === 7, 'the polled bars');
  assert.deepEqual(r.ibkr!.historicalCalls[0].from, S(2), 'asked from the bar after the last one handed on');
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3), S(4), S(5), S(6)]);
  assert.equal(r.storage.bars.get('QQQ', '1Min', S(6))?.source, 'ibkr-historical', 'polled bars are cached before they are handed on');
  // Polled again every historicalPollMs.
  r.clock.set(S(8) + 10_000);
  await until(() => r.delivered().length === 8, 'the next poll');
  assert.equal(r.delivered()[7], S(7));
  assertInOrderOnce(r.delivered());
  assert.equal(r.arbiter.metrics().find((s) => s.name === 'barkeep_feed_bars_delivered_total' && s.labels.rung === 'ibkr-historical')?.value, 6);
});

test('a failed history request takes the historical rung down, and it is asked again a poll interval later', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.ibkr!.history.set(
    'QQQ',
    Array.from({ length: 20 }, (_, i) => mkBar('QQQ', S(i - 5), 'ibkr-historical')),
  );
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.arbiter.onRealtimeDown('QQQ', 'IBKR error 420');
  for (let m = 0; m < 2; m++) {
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
  }
  r.ibkr!.fail = Object.assign(new Error('IBKR error 162: historical market data service error'), { code: '162' });
  // The cache goes stale at S(7); history is asked and refuses.
  r.clock.set(S(7) + 1_000);
  await until(() => r.arbiter.status().feed.QQQ.rung === null, 'the failed request');
  const st = r.arbiter.status().feed.QQQ;
  assert.match(st.reason, /no rung can serve/);
  assert.match(st.unavailable['ibkr-historical'] ?? '', /162/);
  assert.match(st.unavailable.cache ?? '', /stale/);
  r.ibkr!.fail = null;
  r.clock.set(S(8) + 5_000);
  await until(() => r.delivered().length === 8, 'bars once history answers again');
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'ibkr-historical');
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3), S(4), S(5), S(6), S(7)]);
  assert.equal(r.ibkr!.historicalCalls.length, 2);
});

test('IBKR history ends a warm-up that no live rung would end', async () => {
  await using r = rig({ ibkr: true });
  await prefill(r, -5, -1);
  r.ibkr!.history.set(
    'QQQ',
    Array.from({ length: 20 }, (_, i) => mkBar('QQQ', S(i - 5), 'ibkr-historical')),
  );
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.arbiter.onRealtimeDown('QQQ', 'IBKR error 420');
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'preload');
  // No collector: the cache goes stale at S(5) while the preload still serves.
  r.clock.set(S(5) + 1_000);
  await until(() => r.delivered().length === 5, 'the polled bars');
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'ibkr-historical');
  assert.deepEqual(r.delivered(), [S(0), S(1), S(2), S(3), S(4)]);
});

test('with too few cached bars the warm-up comes from IBKR history, asked once', async () => {
  await using r = rig({ ibkr: true, preloadBars: 5 });
  await prefill(r, -2, -1);
  r.ibkr!.history.set(
    'QQQ',
    Array.from({ length: 10 }, (_, i) => mkBar('QQQ', S(i - 10), 'ibkr-historical')),
  );
  let open!: () => void;
  r.ibkr!.gate = new Promise((res) => (open = res));
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  // Keys arriving and ticks passing while history is on its way start no second warm-up.
  r.clock.set(S(0) + 30_000);
  await r.collect('QQQ', [S(-1)]);
  open();
  await until(() => warmupsOf(r.got).length === 1, 'the warm-up');
  await new Promise((res) => setTimeout(res, 20));
  assert.equal(r.ibkr!.historicalCalls.length, 1);
  assert.deepEqual(warmupsOf(r.got), [[S(-5), S(-4), S(-3), S(-2), S(-1)]]);
  assert.equal(r.storage.bars.get('QQQ', '1Min', S(-5))?.source, 'ibkr-historical', 'the history was cached');
});

test('with an empty cache and no IBKR the warm-up waits for the first bars', async () => {
  await using r = rig({ preloadBars: 3 });
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  const st = r.arbiter.status().feed.QQQ;
  assert.equal(st.rung, null);
  assert.match(st.reason, /waiting for history/);
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(-2), S(-1), S(0)]);
  assert.deepEqual(warmupsOf(r.got), [[S(-2), S(-1), S(0)]]);
  r.clock.set(S(2) + 3_000);
  await r.collect('QQQ', [S(1)]);
  assert.deepEqual(r.delivered(), [S(1)]);
});

test('with preload_bars 0 nothing is preloaded and live delivery starts after the newest cached bar', async () => {
  await using r = rig({ preloadBars: 0 });
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  assert.deepEqual(warmupsOf(r.got), []);
  assert.equal(r.arbiter.status().feed.QQQ.rung, 'cache');
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(0)]);
  assert.deepEqual(r.delivered(), [S(0)]);
});

test('a new arbiter over the same LMDB resumes where the old one was, without re-delivering anything', async () => {
  await using r = rig();
  await prefill(r, -5, -1);
  await prefill(r, -5, -1, 'SPY');
  r.arbiter.subscribe(['QQQ', 'SPY'], '1Min', {}, true);
  for (let m = 0; m < 4; m++) {
    r.clock.set(S(m + 1) + 3_000);
    await r.collect('QQQ', [S(m)]);
    await r.collect('SPY', [S(m)]);
  }
  const before = { QQQ: r.delivered('QQQ'), SPY: r.delivered('SPY') };
  assert.deepEqual(before.QQQ, [S(0), S(1), S(2), S(3)]);
  assert.deepEqual(before.SPY, [S(0), S(1), S(2), S(3)]);
  // The old arbiter dies without a shutdown. A later write resolving means its checkpoint writes,
  // queued before, are committed too.
  await r.storage.checkpoints.put('test:barrier', 1);
  // While no arbiter runs, the collector keeps writing.
  r.clock.set(S(5) + 3_000);
  await r.storage.bars.putMany([mkBar('QQQ', S(4)), mkBar('SPY', S(4))]);
  const next = r.newArbiter();
  next.arbiter.resume();
  assert.deepEqual(warmupsOf(next.got, 'QQQ'), [], 'no second warm-up');
  // What was written while it was down is handed on at once, after what the trader had.
  assert.deepEqual(barsOf(next.got, 'QQQ'), [S(4)]);
  assert.deepEqual(barsOf(next.got, 'SPY'), [S(4)]);
  r.clock.set(S(6) + 3_000);
  await r.storage.bars.putMany([mkBar('QQQ', S(5))]);
  next.arbiter.onBarsWritten('1Min', 'QQQ', [S(3), S(4), S(5)]);
  const all = [...before.QQQ, ...barsOf(next.got, 'QQQ')];
  assertInOrderOnce(all);
  assert.deepEqual(all, [S(0), S(1), S(2), S(3), S(4), S(5)]);
  assert.deepEqual(next.arbiter.status().symbols, ['QQQ', 'SPY']);
  assert.equal(next.arbiter.status().feed.QQQ.rung, 'cache');
});

test('after an unsubscribe a new arbiter resumes nothing', async () => {
  await using r = rig();
  await prefill(r, -5, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.arbiter.unsubscribe();
  await r.storage.checkpoints.put('test:barrier', 1);
  const next = r.newArbiter();
  next.arbiter.resume();
  assert.deepEqual(next.arbiter.status().symbols, []);
  assert.deepEqual(next.got, []);
});

test('a trader that subscribes again with what it has gets a warm-up and no bar it already had', async () => {
  await using r = rig();
  await prefill(r, -10, -1);
  r.arbiter.subscribe(['QQQ'], '1Min', {}, true);
  r.clock.set(S(1) + 3_000);
  await r.collect('QQQ', [S(0)]);
  r.clock.set(S(2) + 3_000);
  await r.collect('QQQ', [S(1)]);
  r.got.length = 0;
  r.arbiter.subscribe(['QQQ'], '1Min', { QQQ: S(1) }, true);
  assert.deepEqual(warmupsOf(r.got), [[S(-3), S(-2), S(-1), S(0), S(1)]]);
  r.clock.set(S(3) + 3_000);
  await r.collect('QQQ', [S(0), S(1), S(2)]);
  assert.deepEqual(r.delivered(), [S(2)]);
});
