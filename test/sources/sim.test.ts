import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Bar } from '../../src/market/bar.ts';
import { floorToBar, type BarSize } from '../../src/market/bar-size.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { SimMarket, SimPricePath } from '../../src/sources/sim/index.ts';
import { SourceError } from '../../src/sources/types.ts';

const iso = (s: string) => Date.parse(s);
const MIN = 60_000;
const cal = new MarketCalendar();
const LATE = iso('2030-01-01T00:00:00Z');

function market(seed = 7, session: 'always' | 'nyse' = 'always', now = LATE, cacheDays?: number): SimMarket {
  return new SimMarket({ seed, clock: new ManualClock(now), session, calendar: cal, cacheDays });
}

const values = (bars: Bar[]) => bars.map(({ receivedAt: _r, ...rest }) => rest);

function assertValidBars(bars: Bar[], size: BarSize, from: number, to: number): void {
  let prev = -Infinity;
  for (const b of bars) {
    const at = new Date(b.start).toISOString();
    assert.ok(b.start > prev, `sorted and unique at ${at}`);
    prev = b.start;
    assert.ok(b.start >= from && b.start < to, `in range at ${at}`);
    if (size !== '1Day') assert.equal(b.start, floorToBar(b.start, size), `aligned at ${at}`);
    assert.ok(b.low > 0, `positive at ${at}`);
    assert.ok(b.high >= Math.max(b.open, b.close), `high >= max(open, close) at ${at}`);
    assert.ok(b.low <= Math.min(b.open, b.close), `low <= min(open, close) at ${at}`);
    assert.ok(b.vwap >= b.low && b.vwap <= b.high, `vwap within [low, high] at ${at}`);
    assert.ok(Number.isInteger(b.volume) && b.volume > 0, `volume at ${at}`);
    assert.ok(Number.isInteger(b.trades) && b.trades > 0, `trades at ${at}`);
    assert.equal(b.source, 'sim');
    assert.equal(b.barSize, size);
  }
}

describe('SimMarket determinism', () => {
  const from = iso('2026-03-05T12:00:00Z');
  const to = iso('2026-03-10T16:00:00Z');

  test('the same seed gives the same bars from two separate markets', async () => {
    const a = await market(7).fetchBars('QQQ', '1Min', from, to);
    const b = await market(7).fetchBars('QQQ', '1Min', from, to);
    assert.ok(a.length > 5000);
    assert.deepEqual(values(a), values(b));
  });

  test('different seeds and different symbols give different paths', async () => {
    const a = await market(7).fetchBars('QQQ', '5Min', from, to);
    const b = await market(8).fetchBars('QQQ', '5Min', from, to);
    const c = await market(7).fetchBars('SPY', '5Min', from, to);
    assert.notDeepEqual(
      a.map((x) => x.close),
      b.map((x) => x.close),
    );
    assert.notDeepEqual(
      a.map((x) => x.close),
      c.map((x) => x.close),
    );
  });

  for (const size of ['1Min', '5Min', '1Hour', '1Day'] as const) {
    test(`fetching [a, c) equals fetching [a, b) then [b, c) for ${size}, with b off any bar boundary`, async () => {
      const m = market(11);
      const b = iso('2026-03-08T07:17:31Z');
      const whole = await m.fetchBars('IWM', size, from, to);
      const parts = [...(await m.fetchBars('IWM', size, from, b)), ...(await m.fetchBars('IWM', size, b, to))];
      assert.deepEqual(values(parts), values(whole));
    });
  }

  test('bars do not depend on what was asked before or on cache evictions', async () => {
    const fresh = await market(3).fetchBars('DIA', '15Min', from, to);
    const m = market(3, 'always', LATE, 1);
    await m.fetchBars('DIA', '1Min', iso('2026-03-09T00:00:00Z'), iso('2026-03-12T00:00:00Z'));
    await m.fetchBars('XLE', '1Min', iso('2024-03-09T00:00:00Z'), iso('2024-03-10T00:00:00Z'));
    const later = [];
    for (let t = to; t > from; t -= 6 * 3_600_000) later.unshift(...(await m.fetchBars('DIA', '15Min', Math.max(from, t - 6 * 3_600_000), t)));
    assert.deepEqual(values(later), values(fresh));
  });
});

describe('SimMarket completeness', () => {
  test('returns only bars whose period has ended by the clock, stamped with the clock', async () => {
    const clock = new ManualClock(iso('2026-03-10T15:02:30Z'));
    const m = new SimMarket({ seed: 1, clock, calendar: cal });
    const from = iso('2026-03-10T14:00:00Z');
    const minutes = await m.fetchBars('QQQ', '1Min', from, LATE);
    assert.equal(minutes.at(-1)!.start <= iso('2026-03-10T15:01:00Z'), true);
    assert.ok(minutes.every((b) => b.start + MIN <= clock.now() && b.receivedAt === clock.now()));
    const fives = await m.fetchBars('QQQ', '5Min', from, LATE);
    assert.equal(fives.at(-1)!.start, iso('2026-03-10T14:55:00Z'));
    clock.set(iso('2026-03-10T15:05:00Z'));
    const fivesLater = await m.fetchBars('QQQ', '5Min', from, LATE);
    assert.equal(fivesLater.at(-1)!.start, iso('2026-03-10T15:00:00Z'), 'the 15:00 bar appears once 15:05 is reached');
    assert.deepEqual(values(fivesLater.slice(0, -1)), values(fives));
  });

  test('a daily bar appears only after New York midnight ends its day', async () => {
    const clock = new ManualClock(iso('2026-03-11T03:59:59.999Z')); // 23:59:59.999 EDT on Mar 10
    const m = new SimMarket({ seed: 1, clock, calendar: cal });
    const from = iso('2026-03-01T00:00:00Z');
    const before = await m.fetchBars('QQQ', '1Day', from, LATE);
    assert.equal(before.at(-1)!.start, cal.dayStart('2026-03-09'));
    clock.set(iso('2026-03-11T04:00:00Z'));
    const after = await m.fetchBars('QQQ', '1Day', from, LATE);
    assert.equal(after.at(-1)!.start, cal.dayStart('2026-03-10'));
    assert.ok(
      after.every((b) => b.start === cal.dayStart(b.start)),
      'daily bars start at New York midnight',
    );
  });
});

describe('SimMarket bars', () => {
  test('OHLC, vwap, volume and trades hold their invariants over a week of every size', async () => {
    const from = iso('2026-10-29T00:00:00Z');
    const to = iso('2026-11-05T00:00:00Z');
    for (const session of ['always', 'nyse'] as const) {
      const m = market(5, session);
      for (const size of ['1Min', '5Min', '15Min', '30Min', '1Hour', '1Day'] as const) {
        const bars = await m.fetchBars('AAPL', size, from, to);
        assert.ok(bars.length > 0, `${session} ${size} has bars`);
        assertValidBars(bars, size, from, to);
      }
    }
  });

  test('every larger size is the aggregate of the minute bars inside it', async () => {
    const from = iso('2026-03-06T05:00:00Z');
    const to = iso('2026-03-10T04:00:00Z'); // spans the 23-hour day of 2026-03-08
    const m = market(9);
    const minutes = await m.fetchBars('MSFT', '1Min', from, to);
    for (const size of ['5Min', '15Min', '30Min', '1Hour', '1Day'] as const) {
      const big = await m.fetchBars('MSFT', size, from, to);
      const bucketOf = (t: number) => (size === '1Day' ? cal.dayStart(t) : floorToBar(t, size));
      assert.ok(big.length > 0);
      for (const b of big) {
        const inside = minutes.filter((x) => bucketOf(x.start) === b.start);
        assert.ok(inside.length > 0);
        const at = `${size} ${new Date(b.start).toISOString()}`;
        assert.equal(b.open, inside[0].open, at);
        assert.equal(b.close, inside.at(-1)!.close, at);
        assert.equal(b.high, Math.max(...inside.map((x) => x.high)), at);
        assert.equal(b.low, Math.min(...inside.map((x) => x.low)), at);
        assert.equal(
          b.volume,
          inside.reduce((s, x) => s + x.volume, 0),
          at,
        );
        assert.equal(
          b.trades,
          inside.reduce((s, x) => s + x.trades, 0),
          at,
        );
        const vwap = inside.reduce((s, x) => s + x.vwap * x.volume, 0) / b.volume;
        assert.ok(Math.abs(b.vwap - vwap) <= 1e-4, `${at} vwap ${b.vwap} vs ${vwap}`);
      }
      if (size === '1Day') assert.equal(big.find((b) => b.start === cal.dayStart('2026-03-08')) !== undefined, true);
    }
  });

  test('consecutive minutes join up: each minute opens at the previous close, across midnight too', async () => {
    const bars = await market(2).fetchBars('TSLA', '1Min', iso('2026-03-05T00:00:00Z'), iso('2026-03-07T00:00:00Z'));
    let joined = 0;
    for (let i = 1; i < bars.length; i++) {
      if (bars[i].start - bars[i - 1].start !== MIN) continue;
      assert.equal(bars[i].open, bars[i - 1].close, new Date(bars[i].start).toISOString());
      joined++;
    }
    assert.ok(joined > 2500);
    const midnight = cal.dayStart('2026-03-06');
    const last = bars.find((b) => b.start === midnight - MIN);
    const first = bars.find((b) => b.start === midnight);
    if (last && first) assert.equal(first.open, last.close);
  });

  test('volume is U-shaped in regular hours and thin before and after', async () => {
    const m = market(4, 'nyse');
    let open = 0;
    let midday = 0;
    let close = 0;
    let extended = 0;
    let extendedCount = 0;
    for (const date of ['2026-03-02', '2026-03-03', '2026-03-04', '2026-03-05', '2026-03-06']) {
      const b = cal.sessionBounds(date)!;
      const bars = await m.fetchBars('NVDA', '1Min', b.preOpen, b.postClose);
      const sum = (lo: number, hi: number) => bars.filter((x) => x.start >= lo && x.start < hi).reduce((s, x) => s + x.volume, 0);
      open += sum(b.open, b.open + 30 * MIN);
      midday += sum(b.open + 150 * MIN, b.open + 180 * MIN);
      close += sum(b.close - 30 * MIN, b.close);
      const ext = bars.filter((x) => x.start < b.open || x.start >= b.close);
      extended += ext.reduce((s, x) => s + x.volume, 0);
      extendedCount += 570;
    }
    assert.ok(open > 1.5 * midday, `open ${open} vs midday ${midday}`);
    assert.ok(close > 1.3 * midday, `close ${close} vs midday ${midday}`);
    assert.ok(extended / extendedCount < midday / (5 * 30) / 3, 'pre and post markets trade far less than midday');
  });

  test('prices stay plausible: base prices 20-500 and an annualised volatility near 20-40%', async () => {
    const m = market(6, 'nyse');
    for (const symbol of ['QQQ', 'BRK.B', 'GOOGL', 'X']) {
      const days = await m.fetchBars(symbol, '1Day', iso('2025-01-01T00:00:00Z'), iso('2026-01-01T00:00:00Z'));
      assert.ok(days.length >= 245 && days.length <= 252, `${symbol}: one bar per trading day (${days.length})`);
      const closes = days.map((d) => d.close);
      assert.ok(Math.min(...closes) > 5 && Math.max(...closes) < 2000, `${symbol} stays in a plausible range`);
      const r = closes.slice(1).map((c, i) => Math.log(c / closes[i]));
      const mean = r.reduce((s, x) => s + x, 0) / r.length;
      const vol = Math.sqrt((r.reduce((s, x) => s + (x - mean) ** 2, 0) / (r.length - 1)) * 252);
      assert.ok(vol > 0.12 && vol < 0.65, `${symbol} annualised volatility ${vol.toFixed(3)}`);
    }
  });
});

describe('SimMarket sessions', () => {
  test("'nyse' has no bars on Thanksgiving 2026-11-26 and none outside 04:00-20:00 (17:00 on the early close)", async () => {
    const m = market(1, 'nyse');
    const bars = await m.fetchBars('QQQ', '1Min', cal.dayStart('2026-11-25'), cal.dayStart('2026-11-30'));
    assert.ok(bars.length > 1000);
    assert.equal(bars.filter((b) => cal.dateOf(b.start) === '2026-11-26').length, 0);
    assert.ok(
      bars.every((b) => cal.sessionAt(b.start) !== 'closed'),
      'every bar is in a session',
    );
    const fri = bars.filter((b) => cal.dateOf(b.start) === '2026-11-27');
    assert.ok(fri.at(-1)!.start < iso('2026-11-27T22:00:00Z') && fri.at(-1)!.start >= iso('2026-11-27T21:50:00Z'));
    const daily = await m.fetchBars('QQQ', '1Day', cal.dayStart('2026-11-25'), cal.dayStart('2026-11-30'));
    assert.deepEqual(
      daily.map((b) => cal.dateOf(b.start)),
      ['2026-11-25', '2026-11-27'],
    );
  });

  test("'always' trades at any hour, weekends and holidays included", async () => {
    const bars = await market(1, 'always').fetchBars('QQQ', '1Hour', cal.dayStart('2026-11-26'), cal.dayStart('2026-11-30'));
    assert.equal(bars.length, 4 * 24);
  });
});

describe('SimPricePath five-second bars', () => {
  test('the twelve 5-second bars of a minute aggregate exactly to the minute bar', () => {
    const path = new SimPricePath({ seed: 21, calendar: cal });
    let checked = 0;
    for (let t = iso('2026-03-09T13:00:00Z'); t < iso('2026-03-09T15:00:00Z'); t += MIN) {
      const minute = path.minuteBar('QQQ', t);
      const subs = path.fiveSecondBars('QQQ', t);
      assert.equal(subs.length, 12);
      assert.deepEqual(
        subs.map((s) => s.start - t),
        Array.from({ length: 12 }, (_, k) => k * 5000),
      );
      for (const s of subs) {
        assert.ok(s.high >= Math.max(s.open, s.close) && s.low <= Math.min(s.open, s.close) && s.low > 0);
        assert.ok(s.vwap >= s.low && s.vwap <= s.high);
      }
      for (let k = 1; k < 12; k++) assert.equal(subs[k].open, subs[k - 1].close);
      if (!minute) {
        assert.equal(
          subs.reduce((s, x) => s + x.volume, 0),
          0,
        );
        continue;
      }
      assert.equal(subs[0].open, minute.open);
      assert.equal(subs[11].close, minute.close);
      assert.equal(Math.max(...subs.map((s) => s.high)), minute.high);
      assert.equal(Math.min(...subs.map((s) => s.low)), minute.low);
      assert.equal(
        subs.reduce((s, x) => s + x.volume, 0),
        minute.volume,
      );
      assert.equal(
        subs.reduce((s, x) => s + x.trades, 0),
        minute.trades,
      );
      const vwap = subs.reduce((s, x) => s + x.vwap * x.volume, 0) / minute.volume;
      assert.ok(Math.abs(vwap - minute.vwap) <= 5e-5);
      checked++;
    }
    assert.ok(checked > 100);
  });

  test('a second path with the same seed gives the same minute bars as the source, so the IBKR simulator can share it', async () => {
    const path = new SimPricePath({ seed: 7, calendar: cal });
    const bars = await market(7).fetchBars('QQQ', '1Min', iso('2026-03-09T14:00:00Z'), iso('2026-03-09T14:30:00Z'));
    assert.ok(bars.length > 20);
    for (const b of bars) assert.deepEqual(pick(path.minuteBar('QQQ', b.start)!), pick(b));
  });

  test("in 'nyse' mode there are no 5-second bars outside the sessions", () => {
    const path = new SimPricePath({ seed: 7, calendar: cal, session: 'nyse' });
    assert.deepEqual(path.fiveSecondBars('QQQ', iso('2026-11-26T15:00:00Z')), []);
    assert.deepEqual(path.fiveSecondBars('QQQ', iso('2026-11-25T06:00:00Z')), []);
    assert.equal(path.fiveSecondBars('QQQ', iso('2026-11-25T15:00:00Z')).length, 12);
    assert.equal(path.minuteBar('QQQ', iso('2026-11-26T15:00:00Z')), undefined);
  });
});

function pick(b: { start: number; open: number; high: number; low: number; close: number; volume: number; vwap: number; trades: number }) {
  return { start: b.start, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume, vwap: b.vwap, trades: b.trades };
}

describe('SimMarket contract', () => {
  test('stats count requests and errors and report no rate limit as -1 and 0', async () => {
    const m = market();
    await m.fetchBars('QQQ', '1Min', iso('2026-03-09T14:00:00Z'), iso('2026-03-09T14:10:00Z'));
    await assert.rejects(m.fetchBars('qqq', '1Min', 0, 1), (e: unknown) => e instanceof SourceError && e.code === 'BAD_REQUEST' && e.message.includes('symbol'));
    await assert.rejects(m.fetchBars('QQQ', '2Min' as BarSize, 0, 1), (e: unknown) => e instanceof SourceError && e.code === 'BAD_REQUEST' && e.message.includes('barSize'));
    await assert.rejects(m.fetchBars('QQQ', '1Min', Number.NaN, 1), (e: unknown) => e instanceof SourceError && e.message.includes('from'));
    const s = m.stats();
    assert.equal(s.requests, 4);
    assert.equal(s.errors, 3);
    assert.equal(s.rateLimitRemaining, -1);
    assert.equal(s.rateLimitPerMin, 0);
    assert.equal(s.lastError?.code, 'BAD_REQUEST');
    assert.equal(m.name, 'sim');
    assert.equal(m.apiType, 'Simulated');
    // Stats travel as JSON (status endpoint, metrics): every field survives the round trip, and the
    // -1 for "unlimited" is a number, not an Infinity that JSON would turn into null.
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });

  test('an aborted request rejects with ABORTED', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(market().fetchBars('QQQ', '1Min', 0, 1, ac.signal), (e: unknown) => e instanceof SourceError && e.code === 'ABORTED');
  });

  test('empty and reversed ranges, and ranges before 1970, give no bars', async () => {
    const m = market();
    assert.deepEqual(await m.fetchBars('QQQ', '1Min', iso('2026-03-09T14:00:00Z'), iso('2026-03-09T14:00:00Z')), []);
    assert.deepEqual(await m.fetchBars('QQQ', '5Min', iso('2026-03-09T15:00:00Z'), iso('2026-03-09T14:00:00Z')), []);
    assert.deepEqual(await m.fetchBars('QQQ', '1Day', -10 * 86_400_000 * 365, -86_400_000), []);
  });
});
