/**
 * The Collector against the Massive fake over real HTTP: exact bars across pages, the rate limit,
 * 429 and outages, late and corrected bars, bad bodies. Time is a ManualClock shared by the
 * source's limiter and the fake's rate window; it moves only while no request is in flight.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Collector } from '../../src/actors/collector/collector.ts';
import type { Bar } from '../../src/market/bar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { MassiveSource, type MassiveSourceOptions } from '../../src/sources/massive/source.ts';
import { generatedBars } from '../fakes/massive/generated-bars.ts';
import { type FakeMassive, startFakeMassive, toMassiveWire } from '../fakes/massive/server.ts';
import { DAY, MIN, TempStore, advanceUntil, inTransit, iso, makeCollector, until, values } from './support.ts';

const KEY = 'massive-secret-key-7731';
const T0 = Date.parse('2026-03-11T15:00:03Z'); // Wednesday 11:00:03 New York, just after a minute closed

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Rig {
  clock: ManualClock;
  fake: FakeMassive;
  source: MassiveSource;
  store: TempStore;
  /** A request in transit or a write under way: the clock must not move. */
  busy: () => boolean;
}

async function rig(fakeOpts: Parameters<typeof startFakeMassive>[0] = {}, srcOpts: Partial<MassiveSourceOptions> = {}): Promise<Rig> {
  const clock = new ManualClock(T0);
  const fake = await startFakeMassive({ validKeys: [KEY], clock, generate: true, ...fakeOpts });
  const source = new MassiveSource({ apiKey: KEY, restUrl: fake.url, rateLimitPerMin: 100, clock, backoffMs: 1000, maxRetries: 2, ...srcOpts });
  const store = new TempStore();
  cleanups.push(async () => {
    await source.close();
    await fake.close();
    await store.dispose();
  });
  return { clock, fake, source, store, busy: inTransit([[source, fake]]) };
}

function collectorFor(r: Rig, opts: Parameters<typeof makeCollector>[3] = {}) {
  const made = makeCollector(r.store.storage, r.clock, [r.source], opts);
  const http = inTransit([[r.source, r.fake]]);
  r.busy = () => http() || made.writing();
  return made;
}

/** What the fake serves for complete bars of [from, to) (its ranges are inclusive). */
function served(symbol: string, from: number, to: number): Bar[] {
  return generatedBars(symbol, '1Min', from, to - 1, 'massive');
}

const floorMin = (t: number) => t - (t % MIN);

/** Moves the clock (only while nothing is in flight) until the collector has finished `n` cycles. */
async function cyclesDone(r: Rig, collector: Collector, n: number, maxMs = 60 * MIN): Promise<void> {
  await advanceUntil(
    r.clock,
    () => {
      const s = collector.status();
      return s.cycles >= n && s.next_cycle_at !== null && Date.parse(s.next_cycle_at) > r.clock.now();
    },
    `${n} cycle(s)`,
    { busy: r.busy, maxMs },
  );
}

/**
 * The span the collector asked the fake for, over all of its requests for `symbol` (the path holds
 * from and an inclusive to). The collector picks its spans from the clock at each cycle's start.
 */
function asked(r: Rig, symbol: string, skip = 0): { from: number; to: number } {
  let from = Infinity;
  let to = -Infinity;
  for (const q of r.fake.log.slice(skip)) {
    const m = /^\/v2\/aggs\/ticker\/([^/]+)\/range\/1\/minute\/(\d+)\/(\d+)$/.exec(q.path);
    if (!m || m[1] !== symbol || q.query.cursor || q.status !== 200) continue;
    from = Math.min(from, Number(m[2]));
    to = Math.max(to, Number(m[3]) + 1);
  }
  return { from, to };
}

/** Everything the fake serves over the whole span the collector asked for: any hole in its spans shows. */
function servedOverAsked(r: Rig, symbol: string, skip = 0): Bar[] {
  const { from, to } = asked(r, symbol, skip);
  return served(symbol, from, to);
}

const cached = (r: Rig, symbol: string) => r.store.storage.bars.range(symbol, '1Min', 0, Number.MAX_SAFE_INTEGER);

describe('collector against the Massive fake', () => {
  test('writes exactly the bars Massive serves, across every page', async () => {
    const r = await rig({ pageSize: 400 });
    const { collector, written } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);

    const span = asked(r, 'QQQ');
    assert.equal(span.to - span.from, DAY - (span.from % MIN === 0 ? 0 : span.from % MIN), 'backfill_days back, to the bar still forming');
    assert.equal(span.to % MIN, 0);
    const expected = served('QQQ', span.from, span.to);
    assert.ok(expected.length > 800, 'a day of extended-hours minutes');
    assert.deepEqual(values(cached(r, 'QQQ')), values(expected), 'no more, none missing');
    assert.deepEqual(
      written.flatMap((w) => w.starts),
      expected.map((b) => b.start),
    );
    const pages = r.fake.log.filter((q) => q.path.startsWith('/v2/aggs/'));
    assert.equal(pages.length, Math.ceil(expected.length / 400), 'every next_url was followed');
    assert.ok(pages.every((q) => q.status === 200));
    assert.ok(
      pages.slice(1).every((q) => q.query.cursor),
      'pages after the first come from next_url',
    );
    assert.equal(collector.status().api_type, 'Massive API');
    assert.equal(collector.status().bars_written, expected.length);
    await collector.stop();
  });

  test('many symbols on a 5-per-minute key never exceed the limit, and every symbol is collected', async () => {
    const r = await rig({ rateLimit: { limit: 5 } }, { rateLimitPerMin: 5 });
    const symbols = ['AAPL', 'AMZN', 'GOOG', 'META', 'MSFT', 'NVDA', 'QQQ', 'SPY', 'TSLA', 'IWM', 'DIA', 'XLF'];
    const { collector } = collectorFor(r);
    await collector.start(symbols, '1Min');
    await cyclesDone(r, collector, 2);

    assert.ok(r.fake.maxInWindow <= 5, `at most 5 requests in any minute (saw ${r.fake.maxInWindow})`);
    assert.ok(r.fake.requests >= 24, 'two cycles of twelve symbols');
    assert.ok(
      r.fake.log.every((q) => q.status === 200),
      'the fake never had to answer 429',
    );
    assert.equal(r.source.stats().rateLimited, 0);
    const s = collector.status();
    assert.deepEqual(s.errors, []);
    for (const symbol of symbols) {
      assert.ok(s.last_collection_times[symbol], `${symbol} collected`);
      assert.deepEqual(values(cached(r, symbol)), values(servedOverAsked(r, symbol)), `${symbol} complete`);
    }
    await collector.stop();
  });

  test('a 429 pauses until the window frees, then the cycle completes', async () => {
    const r = await rig();
    r.fake.failNext(1, 429);
    const { collector } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);
    assert.equal(r.source.stats().rateLimited, 1);
    assert.equal(r.fake.log[0].status, 429);
    assert.ok(r.fake.log[1].at - r.fake.log[0].at >= 60_000, 'the retry waited for the rate window');
    assert.deepEqual(collector.status().errors, [], 'the retry succeeded inside the cycle');
    assert.deepEqual(values(cached(r, 'QQQ')), values(servedOverAsked(r, 'QQQ')));
    await collector.stop();
  });

  test('an outage longer than the refetch window is filled by the first good cycle after it', async () => {
    const r = await rig({}, { maxRetries: 1 });
    const { collector } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);
    const before = collector.status().last_collection_times.QQQ;

    // 20 cycles of 503 (two attempts each): 20 minutes without data.
    r.fake.failNext(40, 503);
    await cyclesDone(r, collector, 21);
    const down = collector.status();
    assert.equal(down.is_running, true);
    assert.equal(down.last_collection_times.QQQ, before, 'no collection during the outage');
    assert.equal(down.errors[0].code, 'UNAVAILABLE');
    assert.equal(down.errors[0].status, 503);
    assert.equal(down.source, 'massive');

    await cyclesDone(r, collector, 22);
    const back = collector.status();
    assert.ok(Date.parse(back.last_collection_times.QQQ) - Date.parse(before) >= 20 * MIN);
    const span = asked(r, 'QQQ');
    assert.ok(span.to - Date.parse(before) >= 20 * MIN, 'the span reaches past the outage');
    assert.deepEqual(values(cached(r, 'QQQ')), values(served('QQQ', span.from, span.to)), 'no gap where the outage was');
    await collector.stop();
  });

  test('a bar served late is filled by a later cycle, a corrected bar replaces the old one, unchanged bars are left alone', async () => {
    const r = await rig({ generate: false });
    const base = floorMin(T0) - 30 * MIN;
    const bar = (t: number, close = 100.5): Bar => ({
      symbol: 'QQQ',
      barSize: '1Min',
      start: t,
      open: 100,
      high: 101,
      low: 99,
      close,
      volume: 1000,
      vwap: 100.2,
      trades: 12,
      source: 'massive',
      receivedAt: 0,
    });
    // Both inside the next cycle's refetch window (15 minutes behind its coverage).
    const late = base + 20 * MIN;
    const fixed = base + 25 * MIN;
    const publish = (upTo: number, opts: { withLate: boolean; corrected: boolean }) => {
      const bars: Bar[] = [];
      for (let t = base; t < upTo; t += MIN) {
        if (t === late && !opts.withLate) continue;
        bars.push(bar(t, t === fixed && opts.corrected ? 100.75 : 100.5));
      }
      r.fake.setBars('QQQ', bars);
    };
    publish(floorMin(T0), { withLate: false, corrected: false });
    const { collector, written } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);
    assert.equal(cached(r, 'QQQ').length, 29);
    assert.equal(r.store.storage.bars.get('QQQ', '1Min', late), undefined);

    publish(floorMin(T0) + MIN, { withLate: true, corrected: true });
    written.length = 0;
    const writtenBefore = collector.status().bars_written;
    await cyclesDone(r, collector, 2);
    assert.equal(cached(r, 'QQQ').length, 31);
    assert.equal(r.store.storage.bars.get('QQQ', '1Min', late)?.close, 100.5, 'the late bar is filled');
    assert.equal(r.store.storage.bars.get('QQQ', '1Min', fixed)?.close, 100.75, 'the correction replaced the old bar');
    assert.deepEqual(written, [{ barSize: '1Min', symbol: 'QQQ', starts: [late, fixed, floorMin(T0)] }], 'only what changed is announced');
    assert.equal(collector.status().bars_written, writtenBefore + 3);
    assert.equal(r.store.storage.bars.stats().corrections, 1);
    await collector.stop();
  });

  test('a body that is not JSON fails one cycle, not the collector', async () => {
    const r = await rig();
    r.fake.malformedNext(2); // the source retries a malformed body once
    const { collector } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);
    const s = collector.status();
    assert.equal(s.is_running, true);
    assert.equal(s.errors[0].code, 'MALFORMED');
    assert.deepEqual(s.last_collection_times, {});
    assert.equal(cached(r, 'QQQ').length, 0);

    await cyclesDone(r, collector, 2);
    assert.ok(collector.status().last_collection_times.QQQ);
    // The two malformed answers were 200s too: the span is the later requests'.
    assert.ok(asked(r, 'QQQ', 2).to - asked(r, 'QQQ', 2).from >= DAY - MIN);
    assert.deepEqual(values(cached(r, 'QQQ')), values(servedOverAsked(r, 'QQQ', 2)));
    await collector.stop();
  });

  test('bad bars are skipped and counted; the good bars of the same response are written', async () => {
    const r = await rig({ generate: false });
    const good = generatedBars('QQQ', '1Min', floorMin(T0) - 10 * MIN, floorMin(T0) - 1, 'massive');
    const t = (i: number) => floorMin(T0) - 20 * MIN + i * MIN;
    const wire: unknown[] = [
      { v: 100, o: 'ten', c: 10, h: 11, l: 9, t: t(0) }, // not a number: the source skips it
      { v: 100, o: 10, c: 10, h: 9, l: 11, t: t(1) }, // high < low: the source skips it
      { v: 100, o: 10.00005, c: 10, h: 10, l: 9, t: t(2) }, // open a hair above high: the store would refuse it
      { v: 100, o: 10, c: 10, h: 11, l: 9, vw: 0, t: t(3) }, // vwap 0: the store would refuse it
      { v: 100, o: 10, c: 10, h: 11, l: 9, n: 1.5, t: t(4) }, // a fractional trade count: the store would refuse it
      ...good.map(toMassiveWire),
    ];
    r.fake.setWireBars('QQQ', '1Min', wire);
    const { collector } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);

    assert.deepEqual(values(cached(r, 'QQQ')), values(good), 'every good bar, and no bad one');
    assert.equal(r.source.stats().malformed, 2, 'the source skipped the unreadable ones');
    const s = collector.status();
    assert.equal(s.is_running, true);
    assert.ok(s.last_collection_times.QQQ, 'the symbol counts as collected');
    const invalid = s.errors.find((e) => e.code === 'INVALID_BAR');
    assert.ok(invalid, 'the skipped bars are reported');
    assert.match(invalid.message, /^3 bar\(s\) skipped/);
    const metric = collector.metrics().find((m) => m.name === 'barkeep_collector_invalid_bars_total');
    assert.equal(metric?.value, 3);
    await collector.stop();
  });

  test('stop aborts a cycle that waits on the rate limit', async () => {
    const r = await rig({}, { rateLimitPerMin: 1 });
    const { collector } = collectorFor(r);
    await collector.start(['QQQ', 'SPY', 'IWM'], '1Min');
    await advanceUntil(r.clock, () => cached(r, 'QQQ').length > 0, 'the first symbol', { busy: r.busy, stepMs: 1 });
    // SPY now waits almost a minute for the limiter; the clock stands still.
    let stopped = false;
    const stopping = collector.stop().then((s) => {
      stopped = true;
      return s;
    });
    await until(() => stopped, 'stop to return without the clock moving');
    const s = await stopping;
    assert.equal(s.is_running, false);
    assert.equal(r.fake.requests, 1, 'nothing more was sent');
    assert.equal(cached(r, 'SPY').length, 0);
  });

  test('symbols added by a start during a slow cycle are collected right after it, even on a closed day', async () => {
    const r = await rig({}, { rateLimitPerMin: 1 });
    r.clock.set(Date.parse('2026-03-14T14:00:03Z')); // Saturday: the next scheduled cycle is Sunday's catch-up
    const { collector } = collectorFor(r);
    await collector.start(['QQQ', 'SPY'], '1Min');
    await advanceUntil(r.clock, () => cached(r, 'QQQ').length > 0, 'the first symbol', { busy: r.busy, stepMs: 1 });
    // SPY waits for the limiter; IWM is added meanwhile.
    await collector.start(['QQQ', 'SPY', 'IWM'], '1Min');
    await advanceUntil(r.clock, () => cached(r, 'IWM').length > 0, 'IWM collected', { busy: r.busy, maxMs: 10 * MIN });
    assert.ok(cached(r, 'SPY').length > 0);
    await cyclesDone(r, collector, 2);
    assert.equal(collector.status().next_cycle_at, '2026-03-15T08:00:03.000Z', "then nothing until Sunday's catch-up");
    await collector.stop();
  });

  test('a backfill up to now writes only complete bars, and reports them', async () => {
    const r = await rig();
    const { collector, written } = collectorFor(r);
    const job = collector.startBackfill('QQQ', '1Min', T0 - 2 * DAY, T0);
    assert.equal(job.to, iso(floorMin(T0)), 'cut back to the start of the bar still forming');
    await advanceUntil(r.clock, () => collector.backfillStatus()?.state !== 'running', 'the backfill', { busy: r.busy });
    const done = collector.backfillStatus()!;
    assert.equal(done.state, 'done');
    assert.equal(done.progress, 1);
    const expected = served('QQQ', T0 - 2 * DAY, floorMin(T0));
    assert.deepEqual(values(cached(r, 'QQQ')), values(expected));
    assert.equal(done.bars_written, expected.length);
    assert.deepEqual(
      written.flatMap((w) => w.starts),
      expected.map((b) => b.start),
    );
    assert.equal(collector.status().is_running, false, 'a backfill does not start collecting');
  });

  test('the key never appears in status, errors or metrics', async () => {
    const r = await rig({ validKeys: ['another-key'] });
    const { collector } = collectorFor(r);
    await collector.start(['QQQ'], '1Min');
    await cyclesDone(r, collector, 1);
    const s = collector.status();
    assert.equal(s.errors[0].code, 'AUTH');
    assert.equal(s.errors[0].status, 401);
    const text = JSON.stringify([s, collector.metrics()]);
    assert.ok(!text.includes(KEY));
    await collector.stop();
  });
});
