/**
 * Source failover: Massive preferred, Alpaca behind it, both played by their fakes over real HTTP
 * on one ManualClock. The collector moves to Alpaca when Massive refuses its key or keeps failing,
 * says so in status and logs, keeps the bars flowing, and moves back once Massive answers a probe.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { Collector } from '../../src/actors/collector/collector.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { AlpacaSource } from '../../src/sources/alpaca/source.ts';
import { MassiveSource } from '../../src/sources/massive/source.ts';
import { type FakeAlpaca, startFakeAlpaca } from '../fakes/alpaca/server.ts';
import { generatedBars } from '../fakes/massive/generated-bars.ts';
import { type FakeMassive, startFakeMassive } from '../fakes/massive/server.ts';
import { MIN, TempStore, advanceUntil, inTransit, makeCollector } from './support.ts';

const MASSIVE_KEY = 'massive-key-failover-5150';
const ALPACA_ID = 'alpaca-id-failover-0001';
const ALPACA_SECRET = 'alpaca-secret-failover-0002';
const T0 = Date.parse('2026-03-11T15:00:03Z');

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Rig {
  clock: ManualClock;
  massive: FakeMassive;
  alpaca: FakeAlpaca;
  store: TempStore;
  collector: Collector;
  logs: Array<Record<string, unknown>>;
  busy: () => boolean;
}

async function rig(): Promise<Rig> {
  const clock = new ManualClock(T0);
  const massive = await startFakeMassive({ validKeys: [MASSIVE_KEY], clock, generate: true });
  const alpaca = await startFakeAlpaca({ validKeys: [{ keyId: ALPACA_ID, secret: ALPACA_SECRET }], clock, generate: true });
  const sources = [
    new MassiveSource({ apiKey: MASSIVE_KEY, restUrl: massive.url, rateLimitPerMin: 100, clock, maxRetries: 0 }),
    new AlpacaSource({ keyId: ALPACA_ID, secretKey: ALPACA_SECRET, dataUrl: alpaca.url, clock, maxRetries: 0 }),
  ];
  const store = new TempStore();
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const { collector, writing } = makeCollector(store.storage, clock, sources, { log, failoverAfterFailures: 3, retryPreferredAfterMs: 5 * MIN });
  const http = inTransit([
    [sources[0], massive],
    [sources[1], alpaca],
  ]);
  cleanups.push(async () => {
    await collector.stop();
    await Promise.all(sources.map((s) => s.close()));
    await massive.close();
    await alpaca.close();
    await store.dispose();
  });
  return { clock, massive, alpaca, store, collector, logs, busy: () => http() || writing() };
}

async function advance(r: Rig, cond: () => boolean, what: string): Promise<void> {
  await advanceUntil(r.clock, cond, what, { busy: r.busy, maxMs: 30 * MIN });
}

/** Waits for `n` finished cycles (the next one scheduled). */
async function cycles(r: Rig, n: number): Promise<void> {
  await advance(
    r,
    () => {
      const s = r.collector.status();
      return s.cycles >= n && s.next_cycle_at !== null && Date.parse(s.next_cycle_at) > r.clock.now();
    },
    `${n} cycles`,
  );
}

/** The whole span both fakes were asked for, from their logs of successful requests. */
function askedSpan(r: Rig): { from: number; to: number } {
  let from = Infinity;
  let to = -Infinity;
  for (const q of r.massive.log) {
    const m = /\/range\/1\/minute\/(\d+)\/(\d+)$/.exec(q.path);
    if (!m || q.status !== 200 || q.query.cursor) continue;
    from = Math.min(from, Number(m[1]));
    to = Math.max(to, Number(m[2]) + 1);
  }
  for (const q of r.alpaca.log) {
    if (q.status !== 200 || q.query.page_token) continue;
    from = Math.min(from, Date.parse(q.query.start));
    to = Math.max(to, Date.parse(q.query.end) + 1);
  }
  return { from, to };
}

const prices = (bars: Bar[]) => bars.map((b) => [b.start, b.open, b.high, b.low, b.close, b.volume]);

/** Every minute either vendor serves over the span asked is in the cache: no gap across the switches. */
function assertNoGap(r: Rig): void {
  const { from, to } = askedSpan(r);
  const stored = r.store.storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER);
  assert.deepEqual(prices(stored), prices(generatedBars('QQQ', '1Min', from, to - 1, 'massive')));
}

describe('collector failover between Massive and Alpaca', () => {
  test('a refused Massive key moves collection to Alpaca at once, and a later probe that Massive answers moves it back', async () => {
    const r = await rig();
    r.massive.failNext(2, 401); // the first request and the first probe are refused
    await r.collector.start(['QQQ'], '1Min');
    await cycles(r, 1);

    let s = r.collector.status();
    assert.equal(s.source, 'alpaca');
    assert.equal(s.api_type, 'Alpaca API');
    assert.equal(s.preferred_source, 'massive');
    assert.match(s.failover_reason ?? '', /^massive refused the credentials \(AUTH 401: /);
    assert.ok(s.last_collection_times.QQQ, 'the same cycle collected from Alpaca');
    const first = r.store.storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER);
    assert.ok(first.length > 800 && first.every((b) => b.source === 'alpaca'), 'a day of bars, from Alpaca');
    const failedOver = r.logs.find((l) => l.msg === 'collector failed over');
    assert.deepEqual([failedOver?.from, failedOver?.to, failedOver?.level], ['massive', 'alpaca', 40]);
    assert.equal(failedOver?.reason, s.failover_reason);

    // Five minutes on, the probe is refused again: collection stays on Alpaca.
    await advance(r, () => r.massive.requests === 2, 'the first probe');
    await cycles(r, r.collector.status().cycles + 1);
    s = r.collector.status();
    assert.equal(s.source, 'alpaca');
    assert.equal(s.errors.find((e) => e.source === 'massive')?.code, 'AUTH');
    const newest = r.store.storage.bars.latest('QQQ', '1Min')!;
    assert.ok(newest.start >= T0 - (T0 % MIN) + 5 * MIN && newest.source === 'alpaca', 'Alpaca delivered new bars while failed over');

    // Five more minutes: Massive answers the probe, and collection moves back.
    await advance(r, () => r.collector.status().source === 'massive', 'the move back');
    const backAt = r.clock.now();
    await cycles(r, r.collector.status().cycles + 2);
    s = r.collector.status();
    assert.equal(s.api_type, 'Massive API');
    assert.equal(s.failover_reason, null);
    assert.ok(r.logs.some((l) => l.msg === 'collector back on its preferred source' && l.to === 'massive'));
    const m = r.collector.metrics().find((x) => x.name === 'barkeep_collector_failovers_total');
    assert.equal(m?.value, 2);

    const stored = r.store.storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER);
    // Massive outranks Alpaca: its refetch window replaced Alpaca's newest bars; older ones remain.
    assert.ok(
      stored.some((b) => b.source === 'alpaca'),
      'bars from the Alpaca period remain',
    );
    assert.equal(stored.at(-1)!.source, 'massive', 'new bars come from Massive again');
    assert.ok(stored.filter((b) => b.start >= backAt - MIN).every((b) => b.source === 'massive'));
    assertNoGap(r);
    const text = JSON.stringify([s, r.logs]);
    for (const secret of [MASSIVE_KEY, ALPACA_ID, ALPACA_SECRET]) assert.ok(!text.includes(secret), 'no key in status or logs');
  });

  test('an outage of failover_after_failures cycles moves collection to Alpaca; Massive takes over again when it recovers', async () => {
    const r = await rig();
    r.massive.failNext(3, 503);
    await r.collector.start(['QQQ'], '1Min');
    await cycles(r, 2);
    let s = r.collector.status();
    assert.equal(s.source, 'massive', 'two failed cycles are not enough');
    assert.deepEqual(s.last_collection_times, {});
    assert.equal(r.alpaca.requests, 0);

    await cycles(r, 3);
    s = r.collector.status();
    assert.equal(s.source, 'alpaca');
    assert.match(s.failover_reason ?? '', /^massive failed 3 cycle\(s\) in a row/);
    assert.ok(s.last_collection_times.QQQ, 'the third cycle collected from Alpaca');

    await advance(r, () => r.collector.status().source === 'massive', 'the move back');
    await cycles(r, r.collector.status().cycles + 1);
    assert.equal(r.collector.status().failover_reason, null);
    assertNoGap(r);
  });
});
