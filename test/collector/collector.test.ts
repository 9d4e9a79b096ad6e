/**
 * The Collector on the simulated market: backfill, status, the schedule over whole simulated days,
 * checkpoint and resume. Real LMDB in a temp dir, time from a ManualClock.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Collector } from '../../src/actors/collector/collector.ts';
import type { BarSize } from '../../src/market/bar-size.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { SimMarket } from '../../src/sources/sim/market.ts';
import { DAY, MIN, RecordingSource, TempStore, calendar, iso, makeCollector, until, values } from './support.ts';

const stores: TempStore[] = [];
after(async () => {
  await Promise.all(stores.map((s) => s.dispose()));
});
function tempStore(): TempStore {
  const s = new TempStore();
  stores.push(s);
  return s;
}

function sim(clock: ManualClock, session: 'always' | 'nyse' = 'always'): RecordingSource {
  return new RecordingSource(new SimMarket({ seed: 7, clock, session, calendar }));
}

/** What the simulated market serves for [from, to), asked on a fresh instance at time `now`. */
async function reference(symbol: string, size: BarSize, from: number, to: number, now: number, session: 'always' | 'nyse' = 'always') {
  const market = new SimMarket({ seed: 7, clock: new ManualClock(now), session, calendar });
  return market.fetchBars(symbol, size, from, to);
}

/** Lets the collector's own timer fire at its next_cycle_at and waits for that cycle to finish. */
async function nextCycle(collector: Collector, clock: ManualClock): Promise<number> {
  const before = collector.status();
  assert.ok(before.next_cycle_at, 'a cycle is scheduled');
  const at = Date.parse(before.next_cycle_at);
  assert.ok(at >= clock.now(), 'the next cycle is not in the past');
  clock.set(at);
  await until(() => cycleDone(collector, before.cycles + 1, clock), `the cycle at ${iso(at)}`);
  return at;
}

/** The cycle numbered `n` has finished and the one after it is scheduled. */
function cycleDone(collector: Collector, n: number, clock: ManualClock): boolean {
  const s = collector.status();
  return s.cycles === n && s.next_cycle_at !== null && Date.parse(s.next_cycle_at) > clock.now();
}

/** Runs the first cycle (due at once after start). */
async function firstCycle(collector: Collector, clock: ManualClock): Promise<void> {
  const n = collector.status().cycles;
  clock.advance(0);
  await until(() => cycleDone(collector, n + 1, clock), 'the first cycle');
}

const ny = (date: string, hh: number, mm: number, ss = 0) => calendar.wallTime(date, hh, mm) + ss * 1000;

describe('collector on the simulated market', () => {
  test('the first cycle backfills backfill_days: the store holds exactly the bars served and the arbiter hears every key', async () => {
    const store = tempStore();
    const t0 = Date.parse('2026-03-11T15:00:30Z');
    const clock = new ManualClock(t0);
    const source = sim(clock);
    const { collector, written } = makeCollector(store.storage, clock, [source], { backfillDays: 2, alwaysOpen: true });

    const idle = collector.status();
    assert.equal(idle.is_running, false);
    assert.equal(idle.api_type, 'Simulated');
    assert.equal(idle.next_cycle_at, null);

    const started = await collector.start(['QQQ', 'SPY'], '1Min');
    assert.equal(started.is_running, true);
    assert.deepEqual(started.symbols, ['QQQ', 'SPY']);
    assert.equal(started.next_cycle_at, iso(t0), 'the first cycle is due at once');
    await firstCycle(collector, clock);

    const open = Date.parse('2026-03-11T15:00:00Z');
    let total = 0;
    for (const symbol of ['QQQ', 'SPY']) {
      const served = await reference(symbol, '1Min', t0 - 2 * DAY, open, t0);
      assert.ok(served.length > 2800, 'two days of minute bars');
      const stored = store.storage.bars.range(symbol, '1Min', 0, Number.MAX_SAFE_INTEGER);
      assert.deepEqual(values(stored), values(served), `${symbol}: the store holds exactly the bars served`);
      const heard = written.filter((w) => w.symbol === symbol).flatMap((w) => w.starts);
      assert.deepEqual(
        heard,
        served.map((b) => b.start),
        `${symbol}: the arbiter was told each key once`,
      );
      assert.ok(written.every((w) => w.barSize === '1Min'));
      total += served.length;
    }
    assert.deepEqual(
      source.fetches.map((f) => [f.symbol, f.from, f.to]),
      [
        ['QQQ', t0 - 2 * DAY, open],
        ['SPY', t0 - 2 * DAY, open],
      ],
      'one request per symbol, ending at the bar still forming',
    );

    const s = collector.status();
    assert.equal(s.is_running, true);
    assert.equal(s.api_type, 'Simulated');
    assert.equal(s.source, 'sim');
    assert.equal(s.preferred_source, 'sim');
    assert.equal(s.failover_reason, null);
    assert.deepEqual(s.last_collection_times, { QQQ: iso(t0), SPY: iso(t0) });
    assert.equal(s.is_trading_hours, true, 'the 24/7 simulated market is always in trading hours');
    assert.equal(s.next_cycle_at, '2026-03-11T15:01:03.000Z', 'the next cycle is just after the next minute closes');
    assert.equal(s.cycles, 1);
    assert.equal(s.bars_written, total);
    assert.deepEqual(s.errors, []);
    await collector.stop();
  });

  test('a later cycle writes and announces only the bar that closed, not the refetched ones it already has', async () => {
    const store = tempStore();
    const t0 = Date.parse('2026-03-11T15:00:30Z');
    const clock = new ManualClock(t0);
    const source = sim(clock);
    const { collector, written } = makeCollector(store.storage, clock, [source], { alwaysOpen: true });
    await collector.start(['QQQ'], '1Min');
    await firstCycle(collector, clock);
    const before = collector.status().bars_written;
    written.length = 0;

    const at = await nextCycle(collector, clock);
    assert.equal(at, Date.parse('2026-03-11T15:01:03Z'));
    const last = source.fetches.at(-1)!;
    assert.equal(last.from, Date.parse('2026-03-11T14:45:00Z'), 'it re-asks the refetch window behind what it covered');
    assert.equal(last.to, Date.parse('2026-03-11T15:01:00Z'));
    assert.deepEqual(written, [{ barSize: '1Min', symbol: 'QQQ', starts: [Date.parse('2026-03-11T15:00:00Z')] }]);
    assert.equal(collector.status().bars_written, before + 1);
    assert.equal(store.storage.bars.stats().corrections, 0, 'identical bars are not rewritten as corrections');
    await collector.stop();
  });

  test('the schedule follows the calendar through a trading day: one cycle per minute + settle in regular hours, every 5 minutes outside', async () => {
    const store = tempStore();
    const date = '2026-03-10'; // a Tuesday
    const clock = new ManualClock(ny(date, 0, 0, 30));
    const { collector } = makeCollector(store.storage, clock, [sim(clock, 'nyse')], { backfillDays: 1 });
    await collector.start(['QQQ'], '1Min');
    await firstCycle(collector, clock);
    assert.equal(collector.status().is_trading_hours, false);

    const end = calendar.dayStart('2026-03-11');
    const cycles: number[] = [];
    let sawTradingHours = false;
    while (Date.parse(collector.status().next_cycle_at!) < end) {
      const at = await nextCycle(collector, clock);
      cycles.push(at);
      const s = collector.status();
      assert.equal(s.last_collection_times.QQQ, iso(at), 'the cycle ran at the time its timer was set for');
      if (s.is_trading_hours) sawTradingHours = true;
    }
    const regular = cycles.filter((t) => t > ny(date, 9, 30, 3) && t <= ny(date, 16, 0, 3));
    const pre = cycles.filter((t) => t < ny(date, 9, 31));
    const post = cycles.filter((t) => t > ny(date, 16, 0, 3));
    assert.equal(cycles[0], ny(date, 4, 0, 3), 'the session-start cycle at 04:00 + settle');
    assert.equal(regular.length, 390);
    assert.equal(regular[0], ny(date, 9, 31, 3));
    assert.equal(regular.at(-1), ny(date, 16, 0, 3));
    assert.ok(
      regular.every((t, i) => i === 0 || t - regular[i - 1] === MIN),
      'a minute apart in regular hours',
    );
    assert.equal(pre.length, 1 + 66, '04:00:03, then 04:05:03 .. 09:30:03');
    assert.ok(
      pre.every((t, i) => i === 0 || t - pre[i - 1] === 5 * MIN),
      'five minutes apart in pre-market',
    );
    assert.equal(post.length, 48, '16:05:03 .. 20:00:03');
    assert.equal(post.at(-1), ny(date, 20, 0, 3));
    assert.ok(
      post.every((t, i) => i === 0 || t - post[i - 1] === 5 * MIN),
      'five minutes apart after hours',
    );
    assert.ok(sawTradingHours, 'status said trading hours during the regular session');
    assert.equal(collector.status().next_cycle_at, iso(ny('2026-03-11', 4, 0, 3)), 'nothing overnight: next is the next session start');
    assert.equal(collector.status().cycles, 1 + cycles.length, 'no cycle ran but these');

    // Every minute bar of the day's sessions is in the cache (the sim prints only in sessions).
    const served = await reference('QQQ', '1Min', ny(date, 0, 0), end, end, 'nyse');
    const stored = store.storage.bars.range('QQQ', '1Min', ny(date, 0, 0), end - 1);
    assert.deepEqual(values(stored), values(served));
    await collector.stop();
  });

  test('a holiday gets only its catch-up cycle at 04:00 + settle; configured intervals and settle are followed', async () => {
    const store = tempStore();
    const holiday = '2026-11-26'; // Thanksgiving
    assert.ok(calendar.holiday(holiday));
    const clock = new ManualClock(ny(holiday, 0, 0, 30));
    const schedule = { marketHoursIntervalMs: 2 * MIN, offHoursIntervalMs: 30 * MIN, settleMs: 10_000, closedDayCatchUp: true };
    const { collector } = makeCollector(store.storage, clock, [sim(clock, 'nyse')], { schedule });
    await collector.start(['QQQ'], '1Min');
    await firstCycle(collector, clock);

    const cycles: number[] = [];
    const end = calendar.dayStart('2026-11-28');
    while (Date.parse(collector.status().next_cycle_at!) < end) cycles.push(await nextCycle(collector, clock));
    const onHoliday = cycles.filter((t) => t < calendar.dayStart('2026-11-27'));
    assert.deepEqual(onHoliday.map(iso), [iso(ny(holiday, 4, 0, 10))], 'the one catch-up cycle of the closed day');

    // The next day closes early (13:00): regular cycles every 2 minutes + 10 s, extended every 30 minutes.
    const friday = cycles.filter((t) => t >= calendar.dayStart('2026-11-27'));
    const regular = friday.filter((t) => t > ny('2026-11-27', 9, 30, 10) && t <= ny('2026-11-27', 13, 0, 10));
    assert.equal(regular.length, 105);
    assert.equal(regular[0], ny('2026-11-27', 9, 32, 10));
    assert.equal(regular.at(-1), ny('2026-11-27', 13, 0, 10));
    assert.equal(friday.at(-1), ny('2026-11-27', 17, 0, 10), 'after hours end at 17:00 on an early-close day');
    assert.equal(friday.length, 1 + 11 + 105 + 8);
    assert.equal(collector.status().cycles, 1 + cycles.length, 'no cycle ran but these');
    await collector.stop();
  });

  test('a restarted collector resumes from its checkpoint and asks only for what it lacks', async () => {
    const store = tempStore();
    const t0 = Date.parse('2026-03-11T15:00:30Z');
    const clock = new ManualClock(t0);
    const first = makeCollector(store.storage, clock, [sim(clock)], { alwaysOpen: true });
    await first.collector.start(['QQQ'], '1Min');
    await firstCycle(first.collector, clock);
    await nextCycle(first.collector, clock);
    const leftAt = await nextCycle(first.collector, clock); // 15:02:03
    await first.collector.shutdown();
    assert.equal(clock.pending(), 0, 'shutdown left no timer behind');

    // Ten minutes later a new collector (new thread, new handles) opens the same environment.
    clock.advance(10 * MIN);
    const storage = await store.reopen();
    const source = sim(clock);
    const second = makeCollector(storage, clock, [source], { alwaysOpen: true });
    await second.collector.resume(null);
    const s = second.collector.status();
    assert.equal(s.is_running, true, 'it was running, so it runs again');
    assert.deepEqual(s.symbols, ['QQQ']);
    assert.equal(s.last_collection_times.QQQ, iso(leftAt));
    await firstCycle(second.collector, clock);

    const covered = leftAt - (leftAt % MIN);
    assert.deepEqual(
      source.fetches.map((f) => [f.from, f.to]),
      [[covered - 15 * MIN, clock.now() - (clock.now() % MIN)]],
      'one request, from the refetch window behind its coverage, not backfill_days back',
    );
    const newStarts = second.written.flatMap((w) => w.starts);
    assert.deepEqual(
      newStarts,
      Array.from({ length: 10 }, (_, i) => covered + i * MIN),
      'only the ten missed bars were written',
    );
    const served = await reference('QQQ', '1Min', t0 - DAY, clock.now() - (clock.now() % MIN), clock.now());
    assert.deepEqual(values(storage.bars.range('QQQ', '1Min', 0, Number.MAX_SAFE_INTEGER)), values(served), 'no gap across the restart');
    await second.collector.stop();
  });

  test('a restarted 5Min collector keeps its coverage even where the market printed nothing (a weekend)', async () => {
    const store = tempStore();
    const clock = new ManualClock(ny('2026-03-14', 10, 0, 3)); // a Saturday
    const first = makeCollector(store.storage, clock, [sim(clock, 'nyse')], { backfillDays: 3 });
    await first.collector.start(['QQQ'], '5Min');
    await firstCycle(first.collector, clock);
    const latest = store.storage.bars.latest('QQQ', '5Min')!;
    assert.equal(latest.start, ny('2026-03-13', 19, 55), "Friday's last after-hours bar is the newest");
    await first.collector.shutdown();

    clock.set(ny('2026-03-14', 12, 0));
    const storage = await store.reopen();
    const source = sim(clock, 'nyse');
    const second = makeCollector(storage, clock, [source], { backfillDays: 3 });
    await second.collector.resume(null);
    assert.equal(second.collector.status().bar_size, '5Min');
    await firstCycle(second.collector, clock);
    assert.equal(source.fetches.length, 1);
    assert.equal(source.fetches[0].from, ny('2026-03-14', 10, 0) - 15 * MIN, 'from its Saturday coverage, not from Friday evening');
    await second.collector.stop();
  });

  test('daily bars are collected once their New York day has ended, whatever the UTC date', async () => {
    const store = tempStore();
    // 23:00 New York on Monday 2026-03-09 is already Tuesday in UTC.
    const clock = new ManualClock(Date.parse('2026-03-10T03:00:30Z'));
    const { collector } = makeCollector(store.storage, clock, [sim(clock)], { backfillDays: 4, alwaysOpen: true });
    await collector.start(['QQQ'], '1Day');
    await firstCycle(collector, clock);
    const days = () => store.storage.bars.range('QQQ', '1Day', 0, Number.MAX_SAFE_INTEGER).map((b) => calendar.dateOf(b.start));
    assert.deepEqual(days(), ['2026-03-06', '2026-03-07', '2026-03-08'], 'Monday is still forming');

    // The timer set for 03:01:03 fires, and that cycle runs at 00:05 New York on Tuesday.
    clock.set(Date.parse('2026-03-10T04:05:00Z'));
    await until(() => cycleDone(collector, 2, clock), 'the second cycle');
    assert.deepEqual(days(), ['2026-03-06', '2026-03-07', '2026-03-08', '2026-03-09'], "Monday's bar once Monday ended in New York");
    const served = await reference('QQQ', '1Day', calendar.dayStart('2026-03-09'), calendar.dayStart('2026-03-10'), clock.now());
    assert.deepEqual(values(store.storage.bars.range('QQQ', '1Day', calendar.dayStart('2026-03-09'), calendar.dayStart('2026-03-09'))), values(served));
    await collector.stop();
  });

  test('stop ends the cycles and keeps the place; start resumes from the coverage, not backfill_days back', async () => {
    const store = tempStore();
    const t0 = Date.parse('2026-03-11T15:00:30Z');
    const clock = new ManualClock(t0);
    const source = sim(clock);
    const { collector } = makeCollector(store.storage, clock, [source], { alwaysOpen: true });
    await collector.start(['QQQ'], '1Min');
    await firstCycle(collector, clock);
    const stopped = await collector.stop();
    assert.equal(stopped.is_running, false);
    assert.equal(stopped.next_cycle_at, null);
    clock.advance(30 * MIN);
    assert.equal(collector.status().cycles, 1, 'no cycle while stopped');

    await collector.start(['QQQ'], '1Min');
    await firstCycle(collector, clock);
    assert.equal(source.fetches.at(-1)!.from, Date.parse('2026-03-11T14:45:00Z'));
    await collector.stop();
  });
});
