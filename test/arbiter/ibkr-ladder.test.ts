/**
 * The feed ladder end to end against the TWS simulator, on one thread: one ManualClock, moved by the
 * test (`step`: a second at a time, once no message is in transit and no LMDB write is in progress), drives the simulator,
 * the IBKR adapter, the arbiter and the collector alike, so every step happens at an exact simulated
 * time whatever the machine's load. The collector is the real Collector on the
 * simulated market (SimMarket, source 'sim'), writing minute bars into a real LMDB cache 3 s after
 * each minute closes; IBKR real-time bars come from the simulator through an IbkrDataFeed wired by
 * `wireIbkrFeed`, exactly as the arbiter's actor wires it.
 *
 * One scenario, in steps that build on each other: realtime serves; 420 for QQQ (after a 1101
 * "data lost" makes the adapter ask again) moves it to the cache; the error cleared, it climbs
 * back; the connection drops and comes back; SPY goes silent and is left; the arbiter is dropped
 * and a new one resumes. Across all of it, what the trader received is checked against the cache.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Arbiter } from '../../src/actors/arbiter/arbiter.ts';
import { wireIbkrFeed, type IbkrFeedWiring } from '../../src/actors/arbiter/ibkr-feed.ts';
import type { ArbiterToTrader, Rung } from '../../src/actors/arbiter/protocol.ts';
import { Collector } from '../../src/actors/collector/collector.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { floorToBar } from '../../src/market/bar-size.ts';
import { IbkrDataFeed } from '../../src/sources/ibkr/data-feed.ts';
import { SimMarket } from '../../src/sources/sim/market.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import { startTwsSimulator, type TwsSimulator } from '../fakes/tws/index.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { trackWrites } from '../collector/support.ts';
import { advanceUntil } from '../helpers/wait.ts';

const MIN = 60_000;
const START = Date.UTC(2025, 0, 15, 14, 30, 20); // a Wednesday, 09:30:20 New York
const SYMBOLS = ['QQQ', 'SPY'];
const CLIMB_BACK_AFTER_BARS = 2;
const CLIENT_ID = 7;
const log = pino({ level: 'silent' });

interface Received {
  /** Which arbiter incarnation sent it (0 first, 1 the resumed one). */
  arbiter: number;
  msg: ArbiterToTrader;
  /** Simulated time it was received. */
  at: number;
  /** Place in the one order shared with the adapter's events. */
  seq: number;
}

let sim: TwsSimulator;
let clock: ManualClock;
let dir: string;
let storage: Storage;
/** The bar store and checkpoints the collector and the arbiters write through, counting writes in progress. */
let tracked: ReturnType<typeof trackWrites>;
let collector: Collector;
let arbiter: Arbiter | null = null;
let wiring: IbkrFeedWiring | null = null;
let incarnation = -1;
const received: Received[] = [];
/** Real-time bars the IBKR adapter emitted, in order, with the simulated time. */
const ibkrBars: { symbol: string; start: number; at: number; seq: number }[] = [];
const recovered: { symbol: string; seq: number }[] = [];
let seq = 0;

/** An arbiter with its own IBKR data feed on the simulator, as the actor builds them. */
function startArbiter(): Arbiter {
  incarnation++;
  const me = incarnation;
  const feed = IbkrDataFeed.create({ host: sim.host, port: sim.port, clientId: CLIENT_ID }, sim.clock, {
    // The stall threshold and the heartbeat timeout are the defaults: simulated time does not pass while a message is in transit.
    graceMs: 5_000,
    stallRetry: { initialMs: 30_000 },
    // The client library's outgoing queue drains in real time: unbounded here, so no message waits while the clock moves.
    connectionOptions: { backoff: { initialMs: 5_000, maxMs: 20_000 }, maxRequestsPerSecond: 1e6 },
  });
  feed.on('bar', (b) => ibkrBars.push({ symbol: b.symbol, start: b.start, at: sim.clock.now(), seq: seq++ }));
  feed.on('recovered', (symbol) => recovered.push({ symbol, seq: seq++ }));
  const w = wireIbkrFeed(feed, sim.clock, log);
  const a = new Arbiter({
    store: tracked.bars,
    checkpoints: tracked.checkpoints,
    clock: sim.clock,
    log,
    cacheMaxAgeMs: 5 * MIN,
    preloadBars: 10,
    climbBackAfterBars: CLIMB_BACK_AFTER_BARS,
    historicalPollMs: MIN,
    ibkr: w.port,
    // The message is reused by the arbiter: keep a copy, as postMessage would.
    send: (msg) => {
      received.push({ arbiter: me, msg: structuredClone(msg), at: sim.clock.now(), seq: seq++ });
    },
  });
  w.bind(a);
  wiring = w;
  arbiter = a;
  return a;
}

function feedMessages(symbol: string, from = 0) {
  return received.slice(from).flatMap((r) => (r.msg.type === 'feed' && r.msg.symbol === symbol ? [{ ...r.msg, at: r.at }] : []));
}

/**
 * Moves the clock a second at a time until `cond` holds, each step once nothing is in transit to or
 * from the simulator and no LMDB write of the collector or the arbiter is in progress.
 */
function step(cond: () => boolean, what: string): Promise<void> {
  return advanceUntil(clock, cond, what, { busy: () => sim.busy() || tracked.pending() > 0, stepMs: 1_000, maxMs: 600_000 });
}

/** Moves the clock until `symbol` is switched to `rung` by a message at index >= `from` of `received`. */
async function switchedTo(symbol: string, rung: Rung, from: number) {
  const find = () => feedMessages(symbol, from).find((m) => m.rung === rung);
  await step(() => find() !== undefined, `${symbol} switched to ${rung}`);
  return find()!;
}

function liveBars(symbol: string, which?: number): number[] {
  return received.flatMap((r) => (r.msg.type === 'bar' && r.msg.symbol === symbol && (which === undefined || r.arbiter === which) ? [r.msg.start] : []));
}

function lastLive(symbol: string): number {
  const bars = liveBars(symbol);
  return bars.length ? bars[bars.length - 1] : -Infinity;
}

/** The live bars the trader received after index `from`, with the rung announced before each. */
function barsSince(symbol: string, from: number): { start: number; rung: Rung | null }[] {
  let rung: Rung | null = null;
  const out: { start: number; rung: Rung | null }[] = [];
  for (let i = 0; i < received.length; i++) {
    const m = received[i].msg;
    if (m.type === 'bars' || m.symbol !== symbol) continue; // the in-process arbiter sends no `bars`
    if (m.type === 'feed') rung = m.rung;
    else if (m.type === 'bar' && i >= from) out.push({ start: m.start, rung });
  }
  return out;
}

/** Moves the clock until simulated time is well inside a minute, so a switch leaves a minute half built. */
function midMinute(): Promise<void> {
  return step(() => {
    const into = sim.clock.now() % MIN;
    return into >= 20_000 && into < 40_000;
  }, 'the middle of a minute');
}

/** Moves the clock to `t`: a negative check after it covers that stretch of simulated time. */
function untilSim(t: number): Promise<void> {
  return step(() => sim.clock.now() >= t, `simulated ${new Date(t).toISOString()}`);
}

describe('the feed ladder against the TWS simulator', () => {
  before(async () => {
    clock = new ManualClock(START);
    sim = await startTwsSimulator({ clock, marketDataErrors: {} });
    dir = mkdtempSync(join(tmpdir(), 'barkeep-ibkr-ladder-'));
    storage = openStorage({ path: dir });
    tracked = trackWrites(storage);
    collector = new Collector({
      sources: [new SimMarket({ seed: 3, clock: sim.clock })],
      store: tracked.bars,
      checkpoints: tracked.checkpoints,
      calendar: new MarketCalendar(),
      clock: sim.clock,
      log,
      schedule: { marketHoursIntervalMs: MIN, offHoursIntervalMs: 5 * MIN, settleMs: 3_000, closedDayCatchUp: true },
      backfillDays: 1,
      failoverAfterFailures: 3,
      retryPreferredAfterMs: 5 * MIN,
      alwaysOpen: true,
      onWritten: (barSize, symbol, starts) => arbiter?.onBarsWritten(barSize, symbol, starts),
    });
    await collector.start(SYMBOLS, '1Min');
    await step(() => SYMBOLS.every((s) => storage.bars.latest(s, '1Min')), 'the collector backfilled the cache');
  });

  after(async () => {
    // BARKEEP_TRACE=1 prints what the trader and the adapter saw, in order (for a failing run).
    if (process.env.BARKEEP_TRACE) {
      const t = (x: number) => new Date(x).toISOString().slice(11, 19);
      const ev = [
        ...received.map((r) => ({
          seq: r.seq,
          line: `${t(r.at)} A${r.arbiter} ${'symbol' in r.msg ? r.msg.symbol : ''} ${r.msg.type} ${r.msg.type === 'bar' ? t(r.msg.start) : r.msg.type === 'feed' ? `${r.msg.rung} (${r.msg.reason})` : r.msg.type === 'warmup' ? r.msg.starts.length : r.msg.symbols.length}`,
        })),
        ...ibkrBars.map((b) => ({ seq: b.seq, line: `${t(b.at)} IB ${b.symbol} bar ${t(b.start)}` })),
        ...recovered.map((b) => ({ seq: b.seq, line: `IB ${b.symbol} recovered` })),
      ].sort((a, b) => a.seq - b.seq);
      for (const e of ev) console.log(e.line);
    }
    await collector?.shutdown();
    await arbiter?.shutdown();
    await wiring?.close();
    await sim?.close();
    await storage?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves each symbol from IBKR real-time bars once they flow, after the warm-up from the cache', async () => {
    startArbiter().subscribe(SYMBOLS, '1Min', {}, true);
    for (const symbol of SYMBOLS) {
      await switchedTo(symbol, 'ibkr-realtime', 0);
      await step(() => barsSince(symbol, 0).filter((b) => b.rung === 'ibkr-realtime').length >= 2, `${symbol}: two bars served by the real-time rung`);
      const warmup = received.find((r) => r.msg.type === 'warmup' && r.msg.symbol === symbol)?.msg;
      assert.ok(warmup?.type === 'warmup' && warmup.starts.length === 10, `${symbol} got a 10-bar warm-up first`);
      assert.ok(warmup.starts[9] < liveBars(symbol)[0], 'live delivery starts after the warm-up');
      assert.equal(arbiter!.status().feed[symbol].rung, 'ibkr-realtime');
    }
    assert.equal(arbiter!.status().ibkr.connection, 'connected');
  });

  it('moves a symbol the simulator answers 420 for to the cache within one bar interval, naming 420', async () => {
    await midMinute();
    const from = received.length;
    const askedAt = sim.clock.now();
    sim.setMarketDataError('QQQ', 420);
    // "Restored, data lost": the adapter asks for every stream again, and QQQ's request gets 420.
    sim.sendNotice(1101);
    const sw = await switchedTo('QQQ', 'cache', from);
    assert.match(sw.reason, /420/);
    // On the manual clock the refusal reaches the ladder before the simulator's next 5 s bar (well inside the minute).
    assert.ok(sw.at - askedAt < 5_000, `switched ${sw.at - askedAt} simulated ms after the refusal`);
    const inProgress = floorToBar(askedAt, '1Min');
    await step(() => barsSince('QQQ', from).some((b) => b.start >= inProgress), 'QQQ served from the cache');
    assert.ok(
      barsSince('QQQ', from).every((b) => b.start < inProgress || b.rung === 'cache'),
      'the bar in progress at the refusal and every later one came from the cache',
    );
    // The minute the refusal cut short is completed by the adapter's grace timer: not a sign of life.
    await untilSim(inProgress + MIN + 10_000);
    assert.equal(arbiter!.status().feed.QQQ.rung, 'cache');
    assert.match(arbiter!.status().feed.QQQ.unavailable['ibkr-realtime'] ?? '', /420/);
    assert.equal(storage.bars.get('QQQ', '1Min', inProgress)?.source, 'sim', "the cut-short minute keeps the collector's whole bar");
    assert.deepEqual(feedMessages('SPY', from), [], 'SPY, streaming fine, stayed where it was');
    assert.equal(arbiter!.status().feed.SPY.rung, 'ibkr-realtime');
  });

  it('climbs back to real-time bars once the error is cleared and they delivered climbBackAfterBars fresh bars', async () => {
    const from = received.length;
    const seqFrom = seq;
    sim.clearMarketDataError('QQQ');
    const sw = await switchedTo('QQQ', 'ibkr-realtime', from);
    assert.match(sw.reason, /climbing back/);
    const back = recovered.find((r) => r.symbol === 'QQQ' && r.seq >= seqFrom);
    assert.ok(back, 'the adapter saw QQQ recover');
    const switchSeq = received.find((r, i) => i >= from && r.msg.type === 'feed' && r.msg.symbol === 'QQQ' && r.msg.rung === 'ibkr-realtime')!.seq;
    const freshBefore = ibkrBars.filter((b) => b.symbol === 'QQQ' && b.seq > back.seq && b.seq < switchSeq).length;
    assert.ok(freshBefore >= CLIMB_BACK_AFTER_BARS, `climbed back after ${freshBefore} real-time bars`);
    await step(() => barsSince('QQQ', from).some((b) => b.rung === 'ibkr-realtime'), 'a QQQ bar served by the real-time rung again');
  });

  it('drops every symbol to the cache when the connection drops, and climbs back after it reconnects', async () => {
    await midMinute();
    const from = received.length;
    const connectionsBefore = sim.connections;
    sim.dropClients();
    for (const symbol of SYMBOLS) {
      const down = await switchedTo(symbol, 'cache', from);
      assert.match(down.reason, /disconnected/);
    }
    for (const symbol of SYMBOLS) {
      const up = await switchedTo(symbol, 'ibkr-realtime', from);
      assert.match(up.reason, /climbing back/);
    }
    assert.ok(sim.connections > connectionsBefore, 'the adapter reconnected');
    assert.equal(arbiter!.status().ibkr.connection, 'connected');
  });

  it('detects a silent subscription and leaves it for the cache, and comes back when it talks again', async () => {
    await midMinute();
    const from = received.length;
    const stallsBefore = stallCount();
    sim.silence('SPY');
    const down = await switchedTo('SPY', 'cache', from);
    assert.match(down.reason, /stalled/);
    assert.equal(stallCount(), stallsBefore + 1);
    assert.deepEqual(feedMessages('QQQ', from), [], 'QQQ kept streaming on the real-time rung');
    await step(() => barsSince('SPY', from).some((b) => b.rung === 'cache'), 'SPY served from the cache');
    await untilSim(floorToBar(down.at, '1Min') + MIN + 10_000);
    assert.equal(arbiter!.status().feed.SPY.rung, 'cache');
    assert.match(arbiter!.status().feed.SPY.unavailable['ibkr-realtime'] ?? '', /stalled/, 'still down while silent');
    sim.unsilence('SPY');
    const up = await switchedTo('SPY', 'ibkr-realtime', from);
    assert.match(up.reason, /climbing back/);
  });

  it('resumes after a restart without handing the trader any bar it already had, then carries on', async () => {
    const had = Object.fromEntries(SYMBOLS.map((s) => [s, lastLive(s)]));
    await arbiter!.shutdown();
    await wiring!.close();
    arbiter = null;
    // The collector goes on while no arbiter runs: those bars must reach the trader after the restart.
    await step(() => SYMBOLS.every((s) => storage.bars.latest(s, '1Min')!.start > had[s]), 'the cache moved on while the arbiter was down');
    const from = received.length;
    startArbiter().resume();
    for (const symbol of SYMBOLS) {
      await switchedTo(symbol, 'ibkr-realtime', from);
      await step(() => barsSince(symbol, from).some((b) => b.rung === 'ibkr-realtime'), `${symbol}: a bar from the real-time rung after the restart`);
      const again = liveBars(symbol, 1);
      assert.ok(again.length > 0 && again[0] > had[symbol], `${symbol}: the resumed arbiter starts after ${new Date(had[symbol]).toISOString()}`);
      assert.equal(again[0], storage.bars.range(symbol, '1Min', had[symbol] + 1, again[0]).map((b) => b.start)[0], 'it starts with the next cached bar');
    }
    assert.ok(!received.slice(from).some((r) => r.msg.type === 'warmup'), 'no second warm-up');
  });

  it('hands the trader every cached bar over the span it served, once each and in order, across every switch', () => {
    for (const symbol of SYMBOLS) {
      const live = liveBars(symbol);
      for (let i = 1; i < live.length; i++) assert.ok(live[i] > live[i - 1], `${symbol}: ${new Date(live[i]).toISOString()} after ${new Date(live[i - 1]).toISOString()}`);
      const cached = storage.bars.range(symbol, '1Min', live[0], live[live.length - 1]).map((b) => b.start);
      assert.deepEqual(live, cached, `${symbol}: no hole and nothing extra relative to the cache`);
      const switches = feedMessages(symbol).map((m) => m.rung);
      assert.ok(switches.includes('cache') && switches.includes('ibkr-realtime'), `${symbol} went through both rungs`);
      assert.ok(live.length >= 10, `${symbol}: ${live.length} live bars`);
    }
  });
});

function stallCount(): number {
  return arbiter!.metrics().find((m) => m.name === 'barkeep_feed_stalls_total')?.value ?? 0;
}
