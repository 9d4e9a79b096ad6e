/**
 * The collector on the vendors' streams: streamed bars reach the cache and the arbiter at once;
 * REST is the safety net (gap fill after a drop, reconciliation that replaces a streamed bar);
 * every final stream answer (max_connections, a refused key) has its effect; Alpaca's multi-symbol
 * REST; the rate budget. Real fakes over HTTP and WebSocket on 127.0.0.1, a real LMDB, the real
 * Arbiter in-process for what reaches the trader; time is a ManualClock moved only while no request
 * is in flight.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { Arbiter } from '../../src/actors/arbiter/arbiter.ts';
import type { ArbiterToTrader } from '../../src/actors/arbiter/protocol.ts';
import type { Collector } from '../../src/actors/collector/collector.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { AlpacaSource } from '../../src/sources/alpaca/source.ts';
import { AlpacaStream, alpacaStreamUrl } from '../../src/sources/alpaca/stream.ts';
import { MassiveSource } from '../../src/sources/massive/source.ts';
import { MassiveStream, massiveStreamUrl } from '../../src/sources/massive/stream.ts';
import type { HistoricalBarSource } from '../../src/sources/types.ts';
import { type FakeAlpaca, startFakeAlpaca } from '../fakes/alpaca/server.ts';
import { generatedBars } from '../fakes/massive/generated-bars.ts';
import { type FakeMassive, startFakeMassive } from '../fakes/massive/server.ts';
import { MIN, TempStore, advanceUntil, inTransit, makeCollector, silentLog, until } from './support.ts';

const KEY = 'massive-stream-collector-key-88';
const KEY_ID = 'PKCOLLECTORSTREAM1';
const SECRET = 'alpaca-collector-stream-secret';
const T0 = Date.parse('2026-03-11T15:00:03Z'); // Wednesday 11:00:03 New York, in session

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Rig {
  clock: ManualClock;
  massive: FakeMassive;
  alpaca?: FakeAlpaca;
  store: TempStore;
  collector: Collector;
  written: Array<{ symbol: string; starts: number[] }>;
  delivered: Array<{ symbol: string; start: number; source: string }>;
  arbiter: Arbiter;
  busy: () => boolean;
  logs: string[];
}

interface RigOptions {
  massiveStream?: Parameters<typeof startFakeMassive>[0] extends infer O ? (O extends { stream?: infer S } ? S : never) : never;
  withAlpaca?: boolean;
  alpacaWebsocket?: boolean;
  massiveWebsocket?: boolean;
  rateLimitPerMin?: number;
  alpacaOnly?: boolean;
  alpacaPageSize?: number;
}

async function rig(o: RigOptions = {}): Promise<Rig> {
  const clock = new ManualClock(T0);
  const massive = await startFakeMassive({ validKeys: [KEY], clock, generate: true, stream: o.massiveStream });
  const sources: HistoricalBarSource[] = [];
  const pairs: Array<[HistoricalBarSource, FakeMassive | FakeAlpaca]> = [];
  const streams: Record<string, () => MassiveStream | AlpacaStream> = {};
  if (!o.alpacaOnly) {
    const src = new MassiveSource({ apiKey: KEY, restUrl: massive.url, rateLimitPerMin: o.rateLimitPerMin ?? 1000, clock, backoffMs: 1000, maxRetries: 1 });
    sources.push(src);
    pairs.push([src, massive]);
    if (o.massiveWebsocket !== false) streams.massive = () => new MassiveStream({ apiKey: KEY, url: massiveStreamUrl(massive.url), clock, backoffMs: 1000 });
  }
  let alpaca: FakeAlpaca | undefined;
  if (o.withAlpaca || o.alpacaOnly) {
    alpaca = await startFakeAlpaca({ validKeys: [{ keyId: KEY_ID, secret: SECRET }], clock, generate: true, pageSize: o.alpacaPageSize });
    const a = alpaca;
    const src = new AlpacaSource({ keyId: KEY_ID, secretKey: SECRET, dataUrl: a.url, clock, backoffMs: 1000, maxRetries: 1 });
    sources.push(src);
    pairs.push([src, a]);
    if (o.alpacaWebsocket) {
      streams.alpaca = () => new AlpacaStream({ keyId: KEY_ID, secretKey: SECRET, url: alpacaStreamUrl(a.url, 'iex'), clock, backoffMs: 1000 });
    }
  }
  const store = new TempStore();
  const logs: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        logs.push(String(chunk));
        cb();
      },
    }),
  );
  const delivered: Rig['delivered'] = [];
  const arbiter = new Arbiter({
    store: store.storage.bars,
    checkpoints: store.storage.checkpoints,
    clock,
    log: silentLog,
    cacheMaxAgeMs: 5 * MIN,
    preloadBars: 3,
    climbBackAfterBars: 3,
    historicalPollMs: MIN,
    ibkr: null,
    send: (m: ArbiterToTrader) => {
      if (m.type === 'bar') delivered.push({ symbol: m.symbol, start: m.start, source: m.source });
    },
  });
  const written: Rig['written'] = [];
  const made = makeCollector(store.storage, clock, sources, {
    log,
    streams: streams as never,
    reconcileIntervalMs: 5 * MIN,
    onWritten: (barSize, symbol, starts) => {
      written.push({ symbol, starts });
      arbiter.onBarsWritten(barSize, symbol, starts);
    },
  });
  const http = inTransit(pairs);
  const r: Rig = { clock, massive, alpaca, store, collector: made.collector, written, delivered, arbiter, busy: () => http() || made.writing(), logs };
  cleanups.push(async () => {
    await made.collector.shutdown();
    await arbiter.shutdown();
    for (const s of sources) await s.close?.();
    await massive.close();
    await alpaca?.close();
    await store.dispose();
  });
  return r;
}

/** The bar the fake's REST serves for `start`; the stream sends the same minute. */
function restBar(symbol: string, start: number): Bar {
  return generatedBars(symbol, '1Min', start, start, 'massive')[0];
}

const floorMin = (t: number) => t - (t % MIN);

async function live(r: Rig, source: 'massive' | 'alpaca' = 'massive'): Promise<void> {
  await advanceUntil(
    r.clock,
    () => {
      const s = r.collector.status();
      return s.mode === 'stream' && s.streams[source]?.state === 'live' && s.cycles >= 1 && !r.busy();
    },
    `${source} stream live and the first cycle done`,
    { busy: r.busy, stepMs: 100 },
  );
}

/** Moves the clock to just after `start`'s minute closed (the vendor sends the bar then). */
async function toClose(r: Rig, start: number): Promise<void> {
  await advanceUntil(r.clock, () => r.clock.now() >= start + MIN + 50, 'minute close', { busy: r.busy, stepMs: 50 });
}

describe('collector on a stream', () => {
  for (const greeting of ['connected', 'success'] as const) {
    test(`streamed bars reach the cache and the arbiter at once, without a REST request (greeting ${greeting})`, async () => {
      const r = await rig({ massiveStream: { greeting } });
      r.arbiter.subscribe(['QQQ', 'SPY'], '1Min', {}, false);
      await r.collector.start(['QQQ', 'SPY'], '1Min');
      await live(r);
      const minute = floorMin(r.clock.now());
      await toClose(r, minute);
      const requests = r.massive.requests;
      const sent = { ...restBar('QQQ', minute), vwap: NaN }; // an aggregate without vw
      assert.equal(r.massive.stream.pushMinuteBar('QQQ', sent), 1);
      await until(() => r.delivered.some((d) => d.symbol === 'QQQ' && d.start === minute), 'the streamed bar handed to the trader');
      assert.equal(r.massive.requests, requests, 'no REST request for a streamed bar');
      const stored = r.store.storage.bars.get('QQQ', '1Min', minute)!;
      assert.equal(stored.close, sent.close);
      assert.equal(stored.trades, -1, 'n unknown on the stream: stored as unknown');
      assert.ok(Number.isNaN(stored.vwap), 'vw absent: stored as unknown');
      const st = r.collector.status();
      assert.equal(st.mode, 'stream');
      const h = st.streams.massive!;
      assert.equal(h.state, 'live');
      assert.equal(h.mode, 'stream');
      assert.deepEqual([...h.subscribed].sort(), ['QQQ', 'SPY']);
      assert.ok(h.messages >= 4, `messages ${h.messages}`);
      assert.equal(h.last_message_at, new Date(r.clock.now()).toISOString());
      assert.equal(h.reconnects, 0);
      // REST only reconciles now: the next cycle is 5 minutes after the last one, not at the next minute.
      assert.ok(Date.parse(st.next_cycle_at!) - r.clock.now() > 3 * MIN, `next cycle ${st.next_cycle_at}`);
      const m = r.collector.metrics();
      assert.equal(m.find((x) => x.name === 'barkeep_stream_mode' && x.labels.source === 'massive')?.value, 1);
    });
  }

  test('a frame of several AM events (the vendor packs a minute close) lands every bar in the cache and at the trader', async () => {
    const symbols = ['QQQ', 'SPY', 'IWM', 'DIA', 'AAPL', 'MSFT'];
    const r = await rig();
    r.arbiter.subscribe(symbols, '1Min', {}, false);
    await r.collector.start(symbols, '1Min');
    await live(r);
    const minute = floorMin(r.clock.now());
    await toClose(r, minute);
    const requests = r.massive.requests;
    const before = r.collector.status().streams.massive!;
    const bars = symbols.map((s) => restBar(s, minute));
    // Four events to a frame: two frames, [QQQ SPY IWM DIA] and [AAPL MSFT].
    assert.deepEqual(r.massive.stream.pushMinuteBars(bars, { perFrame: 4 }), { frames: 2, events: 6 });
    await until(() => symbols.every((s) => r.delivered.some((d) => d.symbol === s && d.start === minute)), 'every bar of both frames handed to the trader');
    for (const b of bars) {
      const stored = r.store.storage.bars.get(b.symbol, '1Min', minute);
      assert.equal(stored?.close, b.close, `${b.symbol} in the cache`);
      assert.equal(stored?.source, 'massive');
    }
    assert.equal(r.delivered.filter((d) => d.start === minute).length, symbols.length, 'each bar handed on once');
    assert.equal(r.massive.requests, requests, 'no REST request');
    const after = r.collector.status().streams.massive!;
    assert.equal(after.messages - before.messages, 2, 'two frames received');
    const m = r.collector.metrics();
    assert.equal(m.find((x) => x.name === 'barkeep_stream_bars_total' && x.labels.source === 'massive')?.value, symbols.length);
  });

  test('adding a symbol at start resubscribes on the open connection, without a reconnect', async () => {
    const r = await rig();
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    await r.collector.start(['QQQ', 'SPY'], '1Min');
    await until(() => (r.massive.stream.subscriptions()[0] ?? []).includes('AM.SPY'), 'AM.SPY subscribed');
    await r.collector.start(['SPY'], '1Min');
    await until(() => !(r.massive.stream.subscriptions()[0] ?? []).includes('AM.QQQ'), 'AM.QQQ unsubscribed');
    assert.equal(r.massive.stream.authAttempts, 1);
    assert.equal(r.collector.status().streams.massive!.reconnects, 0);
  });

  test('the stream drops mid-session and REST fills the gap: no hole and no duplicate handed to the trader', async () => {
    const r = await rig();
    r.arbiter.subscribe(['QQQ'], '1Min', {}, false);
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    let minute = floorMin(r.clock.now());
    for (let i = 0; i < 2; i++, minute += MIN) {
      await toClose(r, minute);
      r.massive.stream.pushMinuteBar('QQQ', restBar('QQQ', minute));
      await until(() => r.delivered.some((d) => d.start === minute), `streamed ${minute}`);
    }
    // The outage: the connection dies and reconnects are refused for a while.
    r.massive.stream.refuseConnections(true);
    r.massive.stream.dropAll();
    await until(() => r.collector.status().mode === 'rest', 'mode rest after the drop');
    // Three minutes of REST polling on the normal cadence.
    await advanceUntil(r.clock, () => r.clock.now() >= minute + 3 * MIN + 10_000, 'three minutes of REST', { busy: r.busy });
    assert.ok(
      r.delivered.some((d) => d.start === minute + 2 * MIN),
      'REST delivered the bars the stream missed',
    );
    assert.ok(r.collector.status().streams.massive!.reconnects >= 1);
    r.massive.stream.refuseConnections(false);
    await live(r);
    minute = floorMin(r.clock.now());
    await toClose(r, minute);
    r.massive.stream.pushMinuteBar('QQQ', restBar('QQQ', minute));
    await until(() => r.delivered.some((d) => d.start === minute), 'streamed after the reconnect');
    const starts = r.delivered.filter((d) => d.symbol === 'QQQ').map((d) => d.start);
    const first = starts[0];
    assert.deepEqual(
      starts,
      starts.map((_, i) => first + i * MIN),
      'every minute once, in order',
    );
  });

  test('bars streamed while the REST fill after a reconnect is under way are handed on after the gap, in order', async () => {
    const r = await rig();
    r.arbiter.subscribe(['QQQ'], '1Min', {}, false);
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    const first = floorMin(r.clock.now());
    await toClose(r, first);
    r.massive.stream.pushMinuteBar('QQQ', restBar('QQQ', first));
    await until(() => r.delivered.some((d) => d.start === first), 'first streamed bar delivered');
    // The next minute closes while the connection is down: its frame is lost.
    const lost = first + MIN;
    await toClose(r, lost);
    r.massive.slowNext(1, 300); // the fill after the reconnect takes a while
    r.massive.stream.dropAll();
    await until(() => r.collector.status().streams.massive!.state === 'reconnecting', 'dropped');
    await advanceUntil(r.clock, () => r.massive.stream.authenticated === 1 && r.collector.status().streams.massive!.state === 'live', 'reconnected', { busy: r.busy, stepMs: 100 });
    // While the fill is in flight, the vendor sends the following minute.
    const next = lost + MIN;
    await until(() => r.massive.stream.pushMinuteBar('QQQ', restBar('QQQ', next)) === 1, 'resubscribed and sent');
    assert.ok(r.massive.inFlight > 0, 'the fill was still under way when the bar came');
    await until(() => r.delivered.some((d) => d.start === next), 'the bar after the gap delivered');
    const starts = r.delivered.map((d) => d.start).filter((t) => t >= first);
    assert.deepEqual(starts, [first, lost, next]);
  });

  test('a REST correction replaces a streamed bar, and the divergence is counted', async () => {
    const r = await rig();
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    const minute = floorMin(r.clock.now());
    await toClose(r, minute);
    const rest = restBar('QQQ', minute);
    const early = { ...rest, close: rest.low, volume: rest.volume - 7 }; // before late trades
    r.massive.stream.pushMinuteBar('QQQ', early);
    await until(() => r.store.storage.bars.get('QQQ', '1Min', minute)?.close === early.close, 'streamed bar cached');
    // The reconciliation cycle, 5 minutes on, brings the vendor's final bar.
    const cycles = r.collector.status().cycles;
    await advanceUntil(r.clock, () => r.collector.status().cycles > cycles && !r.busy(), 'reconciliation cycle', { busy: r.busy, maxMs: 6 * MIN });
    const stored = r.store.storage.bars.get('QQQ', '1Min', minute)!;
    assert.equal(stored.close, rest.close);
    assert.equal(stored.volume, rest.volume);
    assert.equal(stored.trades, rest.trades);
    const div = r.collector.metrics().find((x) => x.name === 'barkeep_stream_divergences_total' && x.labels.source === 'massive');
    assert.equal(div?.value, 1);
  });

  test('max_connections (another process took the key) falls back to REST and says so in status', async () => {
    const r = await rig({ massiveStream: { maxConnectionsPerKey: 1 } });
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    const other = new MassiveStream({ apiKey: KEY, url: massiveStreamUrl(r.massive.url), clock: r.clock });
    cleanups.push(() => other.close());
    await other.connect();
    await until(() => r.collector.status().streams.massive!.state === 'failed', 'stream given up');
    const st = r.collector.status();
    assert.equal(st.mode, 'rest');
    assert.equal(st.source, 'massive', 'not a failover: REST on the same vendor');
    assert.match(st.streams.massive!.reason ?? '', /max_connections.*Maximum number of websocket connections exceeded.*collecting over REST/);
    assert.match(st.errors[0].message, /Maximum number of websocket connections exceeded/);
    // REST on the normal cadence again: the next cycle at the next minute close.
    assert.ok(Date.parse(st.next_cycle_at!) - r.clock.now() <= MIN + 5_000, `next cycle ${st.next_cycle_at}`);
    // It does not fight the other connection.
    await advanceUntil(r.clock, () => r.clock.now() >= T0 + 10 * MIN, 'ten minutes', { busy: r.busy });
    assert.equal(r.massive.stream.authAttempts, 2);
    assert.equal(other.state, 'live');
  });

  test('a key refused on the stream fails over to Alpaca, whose stream takes over', async () => {
    const r = await rig({ withAlpaca: true, alpacaWebsocket: true });
    r.massive.stream.refuseAuth('Your plan does not include websocket access. Visit https://massive.com/pricing to upgrade.');
    await r.collector.start(['QQQ'], '1Min');
    await live(r, 'alpaca');
    const st = r.collector.status();
    assert.equal(st.source, 'alpaca');
    assert.match(st.failover_reason ?? '', /massive refused the credentials on its stream.*Your plan does not include websocket access/);
    assert.equal(st.streams.massive!.state, 'off');
    assert.equal(st.streams.alpaca!.mode, 'stream');
    assert.ok(st.errors.some((e) => e.source === 'massive' && /Your plan does not include websocket access/.test(e.message)));
    const minute = floorMin(r.clock.now());
    await toClose(r, minute);
    r.alpaca!.stream.pushMinuteBar('QQQ', { ...restBar('QQQ', minute), source: 'alpaca' });
    await until(() => r.store.storage.bars.get('QQQ', '1Min', minute)?.source === 'alpaca', 'the Alpaca-streamed bar cached');
  });

  test('a stream silent for three minutes in session is stalled: reconnected, REST filling meanwhile', async () => {
    const r = await rig();
    await r.collector.start(['QQQ'], '1Min');
    await live(r);
    const auths = r.massive.stream.authAttempts;
    await advanceUntil(r.clock, () => r.collector.status().streams.massive!.stalls === 1, 'stall detected', { busy: r.busy, maxMs: 5 * MIN });
    await until(() => r.massive.stream.authAttempts > auths || r.collector.status().mode === 'rest', 'reconnecting');
    await live(r);
    assert.equal(r.massive.stream.authAttempts, auths + 1);
    const h = r.collector.status().streams.massive!;
    assert.ok(h.reconnects >= 1);
    assert.equal(r.collector.metrics().find((x) => x.name === 'barkeep_stream_stalls_total')?.value, 1);
  });
});

describe('collector REST at scale', () => {
  test('Alpaca REST collects many symbols with the multi-symbol endpoint, following pages across symbols', async () => {
    const r = await rig({ alpacaOnly: true, alpacaPageSize: 500 });
    const symbols = ['AAPL', 'MSFT', 'SPY', 'QQQ'];
    await r.collector.start(symbols, '1Min');
    await advanceUntil(r.clock, () => r.collector.status().cycles >= 1 && !r.busy(), 'first cycle', { busy: r.busy });
    const fake = r.alpaca!;
    assert.equal(fake.multiRequests, fake.requests, 'every request on /v2/stocks/bars');
    let total = 0;
    for (const s of symbols) {
      const want = generatedBars(s, '1Min', T0 - 24 * 60 * MIN, floorMin(T0) - 1, 'alpaca');
      total += want.length;
      const got = r.store.storage.bars.range(s, '1Min', want[0].start, floorMin(T0));
      assert.equal(got.length, want.length, s);
      assert.deepEqual(
        got.map((b) => b.close),
        want.map((b) => b.close),
      );
    }
    // One request per 500 bars across all four symbols, not one (or more) per symbol.
    assert.equal(fake.requests, Math.ceil(total / 500));
  });

  test('50 symbols on a 5-requests-per-minute plan: the start warns, status shows the budget, cycles stretch to fit', async () => {
    const r = await rig({ rateLimitPerMin: 5, massiveWebsocket: false });
    const symbols = Array.from({ length: 50 }, (_, i) => `S${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}`);
    const st = await r.collector.start(symbols, '1Min');
    assert.deepEqual(st.rate_budget, { needed: 50, available: 5, requests_per_cycle: 50, interval_ms: 10 * MIN, stretched: true });
    const line = r.logs.find((l) => l.includes('rate budget'));
    assert.ok(line, 'a log line about the rate budget');
    assert.match(line, /50 symbols need 50 requests\/min, the plan allows 5; REST cycles run every 10 min/);
    assert.equal(JSON.parse(line).level, 40);
  });
});
