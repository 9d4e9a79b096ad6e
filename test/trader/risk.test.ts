import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type RiskConfigInput, type RiskConfigError, RiskEngine, type RiskOrder, type RiskState } from '../../src/actors/trader/risk.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { T0 } from './support.ts';

const LIMITS: RiskConfigInput = {
  maxPositionPerSymbol: 1000,
  maxOrderNotional: 50_000,
  maxGrossExposure: 200_000,
  maxDailyLoss: 5_000,
  maxOrdersPerMinute: 3,
  allowedSessions: ['always'],
};

function state(o: { positions?: Record<string, number>; open?: Record<string, number>; prices?: Record<string, number>; pnl?: number; now?: number } = {}): RiskState {
  return {
    positions: new Map(Object.entries(o.positions ?? {})),
    openQty: new Map(Object.entries(o.open ?? {})),
    prices: new Map(Object.entries(o.prices ?? { QQQ: 40 })),
    pnlToday: o.pnl ?? 0,
    now: o.now ?? T0,
  };
}

const buy = (qty: number, symbol = 'QQQ', extra: Partial<RiskOrder> = {}): RiskOrder => ({ symbol, side: 'buy', qty, type: 'market', ...extra });
const sell = (qty: number, symbol = 'QQQ', extra: Partial<RiskOrder> = {}): RiskOrder => ({ symbol, side: 'sell', qty, type: 'market', ...extra });

function refusal(d: ReturnType<RiskEngine['check']>): { rule: string; reason: string } {
  assert.equal(d.ok, false, 'expected a refusal');
  return d as { rule: string; reason: string };
}

test('an order inside every limit passes', () => {
  assert.deepEqual(new RiskEngine(LIMITS).check(buy(100), state()), { ok: true });
});

test('max position per symbol refuses an order that takes the position, open orders included, past the limit', () => {
  const risk = new RiskEngine(LIMITS);
  const r = refusal(risk.check(buy(200), state({ positions: { QQQ: 700 }, open: { QQQ: 200 } })));
  assert.equal(r.rule, 'max_position');
  assert.equal(r.reason, 'buy 200 QQQ would take the QQQ position (with open orders) from 900 to 1,100 shares, beyond the maximum of 1,000 per symbol');
  assert.equal(refusal(risk.check(sell(2100), state({ positions: { QQQ: 900 } }))).rule, 'max_position', 'a short past the limit is refused too');
  assert.equal(risk.check(sell(100), state({ positions: { QQQ: 1200 } })).ok, true, 'reducing an over-limit position is allowed');
});

test('max order notional refuses an order worth more than the limit, at the limit price when it has one', () => {
  const risk = new RiskEngine(LIMITS);
  const r = refusal(risk.check(buy(500, 'SPY'), state({ prices: { SPY: 600 } })));
  assert.equal(r.rule, 'max_order_notional');
  assert.equal(r.reason, 'buy 500 SPY has a notional of $300,000.00 (500 x $600.00), above the maximum of $50,000.00 per order');
  assert.equal(refusal(risk.check(buy(100, 'SPY', { type: 'limit', limitPrice: 501 }), state({ prices: { SPY: 400 } }))).rule, 'max_order_notional');
  assert.match(refusal(risk.check(buy(1, 'IWM'), state())).reason, /no price is known for IWM/);
});

test('max gross exposure refuses an order that lifts the sum of all positions past the limit', () => {
  const risk = new RiskEngine(LIMITS);
  const s = state({ positions: { AAA: 1000, BBB: -900 }, prices: { AAA: 100, BBB: 100, CCC: 50 } });
  const r = refusal(risk.check(buy(500, 'CCC'), s));
  assert.equal(r.rule, 'max_gross_exposure');
  assert.equal(r.reason, 'buy 500 CCC would take gross exposure from $190,000.00 to $215,000.00, above the maximum of $200,000.00');
  assert.equal(risk.check(buy(100, 'BBB'), s).ok, true, 'covering part of a short lowers exposure and passes');
});

test('max daily loss stops new entries but lets an order that reduces a position through', () => {
  const risk = new RiskEngine(LIMITS);
  const s = state({ positions: { QQQ: 300 }, pnl: -5000.5 });
  const r = refusal(risk.check(buy(10), s));
  assert.equal(r.rule, 'max_daily_loss');
  assert.equal(r.reason, 'buy 10 QQQ refused: the loss today of $5,000.50 has reached the maximum daily loss of $5,000.00; only orders that reduce a position are accepted');
  assert.equal(risk.check(sell(300), s).ok, true);
  assert.equal(refusal(risk.check(sell(400), s)).rule, 'max_daily_loss', 'selling through zero into a short is a new entry');
  assert.equal(risk.check(buy(10), state({ pnl: -4999 })).ok, true);
});

test('max orders per minute refuses once the limit was sent within the trailing minute, and frees up as they age out', () => {
  const risk = new RiskEngine(LIMITS);
  risk.recordOrder(T0 - 50_000);
  risk.recordOrder(T0 - 10_000);
  risk.recordOrder(T0);
  const r = refusal(risk.check(buy(1), state()));
  assert.equal(r.rule, 'max_orders_per_minute');
  assert.equal(r.reason, 'buy 1 QQQ refused: 3 orders were already sent in the last minute, the maximum is 3 per minute');
  assert.equal(risk.ordersInLastMinute(T0), 3);
  assert.equal(risk.check(buy(1), state({ now: T0 + 10_001 })).ok, true, 'the oldest left the window');
});

test("a per-minute limit above the order ring's starting size counts every order as the ring grows", () => {
  const risk = new RiskEngine({ ...LIMITS, maxOrdersPerMinute: 150 });
  // 150 orders a millisecond apart, ending at T0: the ring grows from 64 to 128 to 150 on the way.
  for (let i = 149; i >= 0; i--) {
    assert.equal(risk.check(buy(1), state({ now: T0 - i })).ok, true, `order ${150 - i} of 150`);
    risk.recordOrder(T0 - i);
  }
  assert.equal(risk.ordersInLastMinute(T0), 150);
  assert.equal(refusal(risk.check(buy(1), state())).rule, 'max_orders_per_minute');
  // The oldest (T0 - 149) leaves the window first: then one more may go.
  assert.equal(refusal(risk.check(buy(1), state({ now: T0 - 149 + 59_999 }))).rule, 'max_orders_per_minute');
  assert.equal(risk.check(buy(1), state({ now: T0 - 149 + 60_000 })).ok, true);
  risk.recordOrder(T0 - 149 + 60_000);
  assert.equal(refusal(risk.check(buy(1), state({ now: T0 - 149 + 60_000 }))).rule, 'max_orders_per_minute', 'the ring, full at the limit, wraps');
});

test('sessions: only the allowed sessions of the market calendar pass', () => {
  const cal = new MarketCalendar();
  const risk = new RiskEngine({ ...LIMITS, allowedSessions: ['regular'] }, cal);
  const preMarket = Date.UTC(2025, 5, 2, 12, 0); // 08:00 New York
  const saturday = Date.UTC(2025, 5, 7, 15, 0);
  assert.equal(risk.check(buy(1), state({ now: T0 })).ok, true);
  const pre = refusal(risk.check(buy(1), state({ now: preMarket })));
  assert.equal(pre.rule, 'session');
  assert.equal(pre.reason, 'it is the pre-market session at 2025-06-02T12:00:00.000Z; trading is allowed only in: regular');
  assert.match(refusal(risk.check(buy(1), state({ now: saturday }))).reason, /^the market is closed at/);
  const extended = new RiskEngine({ ...LIMITS, allowedSessions: ['pre', 'regular'] }, cal);
  assert.equal(extended.check(buy(1), state({ now: preMarket })).ok, true);
  assert.equal(new RiskEngine(LIMITS).check(buy(1), state({ now: saturday })).ok, true, "'always' ignores the calendar");
});

test('the kill switch refuses every order but flattening ones until resumed', () => {
  const risk = new RiskEngine(LIMITS);
  risk.kill(T0);
  assert.deepEqual(risk.check(buy(1), state()), { ok: false, rule: 'kill_switch', reason: 'kill switch engaged' });
  assert.equal(risk.check(sell(300, 'QQQ', { flatten: true }), state({ positions: { QQQ: 300 } })).ok, true);
  assert.equal(risk.snapshot(T0).killed, true);
  risk.resume();
  assert.equal(risk.check(buy(1), state()).ok, true);
});

test('bad risk config is refused with the field named, and session limits need a calendar', () => {
  assert.throws(
    () => new RiskEngine({ ...LIMITS, maxOrderNotional: -1 }),
    (e: RiskConfigError) => e.code === 'RISK_CONFIG' && /"maxOrderNotional"/.test(e.message),
  );
  assert.throws(() => new RiskEngine({ ...LIMITS, allowedSessions: ['lunch' as 'pre'] }), /"allowedSessions.0"/);
  assert.throws(() => new RiskEngine({ ...LIMITS, maxPostion: 3 } as RiskConfigInput), /"maxPostion"/);
  assert.throws(() => new RiskEngine({ ...LIMITS, allowedSessions: ['regular'] }), /needs a market calendar/);
});

test("a bracket whose stop-loss would lose more than the daily-loss headroom left is refused under max_daily_loss, open brackets' stops counted", () => {
  const risk = new RiskEngine(LIMITS);
  // 100 shares with a stop $10 below: $1,000 at risk. Lost $3,500 today and $600 at risk in open brackets: $900 left.
  const r = refusal(risk.check(buy(100, 'QQQ', { worstLoss: 1000 }), { ...state({ pnl: -3500 }), openWorstLoss: 600 }));
  assert.equal(r.rule, 'max_daily_loss');
  assert.match(r.reason, /could lose \$1,000\.00 if its stop-loss fires, more than the \$900\.00 left of the maximum daily loss of \$5,000\.00 \(P&L today -\$3,500\.00, open stop-losses \$600\.00\)/);
  assert.deepEqual(risk.check(buy(100, 'QQQ', { worstLoss: 900 }), { ...state({ pnl: -3500 }), openWorstLoss: 600 }), { ok: true }, 'exactly the headroom fits');
  assert.deepEqual(risk.check(sell(100, 'QQQ', { worstLoss: 99_999 }), state({ positions: { QQQ: 100 }, pnl: -4900 })), { ok: true }, 'an order that reduces a position is never held back by it');
});

test('a stop order is checked for notional at its stop price', () => {
  const risk = new RiskEngine(LIMITS);
  const r = refusal(risk.check(buy(600, 'QQQ', { type: 'stop', stopPrice: 90 }), state()));
  assert.equal(r.rule, 'max_order_notional');
  assert.match(r.reason, /\$54,000\.00 \(600 x \$90\.00\)/);
});
