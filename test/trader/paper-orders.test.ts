/**
 * The paper broker's stop, stop-limit, trailing-stop, bracket and time-in-force rules (the rules
 * in paper-fills.ts and the paper broker's header), on real LMDB, bar by bar.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BrokerEvent } from '../../src/actors/trader/broker.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import { MarketCalendar } from '../../src/market/calendar.ts';
import { ManualClock } from '../../src/market/clock.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { bar, MIN, storageAt, T0, tempDir, order } from './support.ts';

/** A long bracket: market entry `g`, take-profit at `tp`, stop-loss at `sl`. */
function bracket(g: string, tp: number, sl: number, entry: Partial<OrderRecord> = {}): OrderRecord[] {
  return [
    order(g, { groupId: g, role: 'entry', ...entry }),
    order(`${g}-tp`, { side: 'sell', type: 'limit', limitPrice: tp, tif: 'gtc', groupId: g, role: 'take_profit' }),
    order(`${g}-sl`, { side: 'sell', type: 'stop', stopPrice: sl, tif: 'gtc', groupId: g, role: 'stop_loss' }),
  ];
}

function setup(t: Parameters<typeof tempDir>[0], opts: { dir?: string; calendar?: MarketCalendar; now?: number } = {}) {
  const dir = opts.dir ?? tempDir(t);
  const storage = storageAt(t, dir);
  const clock = new ManualClock(opts.now ?? T0 + MIN);
  const broker = new PaperBroker({ checkpoints: storage.checkpoints, clock, slippageBps: 10, commissionPerShare: 0.005, minCommission: 1, startingCash: 100_000, calendar: opts.calendar });
  const events: BrokerEvent[] = [];
  broker.onEvent((e) => events.push(e));
  return { dir, storage, clock, broker, events };
}

const fillsOf = async (b: PaperBroker) => (await b.executions()).map((f) => [f.clientOrderId, f.price]);
const openIds = async (b: PaperBroker) => (await b.openOrders()).map((o) => o.clientOrderId);

test('a sell stop that the bar gaps past fills at the open less slippage, not at the stop', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('s1', { side: 'sell', type: 'stop', stopPrice: 95 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 96, { open: 97, low: 95.01, high: 97 }));
  assert.deepEqual(await fillsOf(broker), [], 'a bar that stays above the stop does not trigger it');
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 92.5, { open: 93, low: 92, high: 93.5 }));
  assert.deepEqual(await fillsOf(broker), [['s1', 92.907]]);
});

test('a stop that a bar trades through fills at the stop with slippage; a buy stop mirrors it', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('s1', { side: 'sell', type: 'stop', stopPrice: 95 }));
  await broker.submit(order('b1', { side: 'buy', type: 'stop', stopPrice: 98 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 96, { open: 97, low: 94, high: 99 }));
  assert.deepEqual(await fillsOf(broker), [
    ['s1', 94.905],
    ['b1', 98.098],
  ]);
});

test('a stop-limit that triggers on a gap below its limit does not fill, stays working as a limit, and fills when a later bar reaches it', async (t) => {
  const { broker, events } = setup(t);
  await broker.submit(order('sl1', { side: 'sell', type: 'stop_limit', stopPrice: 95, limitPrice: 94 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 93, { open: 93, low: 92.5, high: 93.5 }));
  assert.deepEqual(await fillsOf(broker), []);
  assert.deepEqual(await openIds(broker), ['sl1']);
  // Above the stop again: a triggered stop-limit is a plain limit now, and this bar trades through it.
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 94.2, { open: 93.8, low: 93.6, high: 94.5 }));
  assert.deepEqual(await fillsOf(broker), [['sl1', 94]]);
  assert.deepEqual(
    events.map((e) => e.type),
    ['accepted', 'fill'],
  );
});

test('a stop-limit triggered inside a bar fills at its stop when the stop is above its sell limit', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('sl2', { side: 'sell', type: 'stop_limit', stopPrice: 95, limitPrice: 94.9 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 94, { open: 96, low: 93, high: 96 }));
  assert.deepEqual(await fillsOf(broker), [['sl2', 94.905]]);
});

test('a trailing stop follows a rising series by its amount and exits on the fall at the exact trailed level', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('tr', { side: 'sell', type: 'trailing_stop', trailAmount: 2 }));
  // open 100: the stop starts at 98, then trails the highs 101, 103, 105 -> 103.
  await broker.onBar(bar('QQQ', T0 + MIN, 100.5, { open: 100, low: 99, high: 101 }));
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 102.5, { open: 100.5, low: 100, high: 103 }));
  await broker.onBar(bar('QQQ', T0 + 3 * MIN, 104.5, { open: 102.5, low: 102, high: 105 }));
  assert.equal((await broker.openOrders())[0].stopPrice, 103, 'open orders show where the stop has trailed to');
  assert.deepEqual(await fillsOf(broker), [], 'lows 99, 100 and 102 stayed above the trailing level at each bar open (98, 99, 101)');
  await broker.onBar(bar('QQQ', T0 + 4 * MIN, 102, { open: 104.5, low: 101.5, high: 104.6 }));
  assert.deepEqual(await fillsOf(broker), [['tr', 102.897]], 'exits at the level 105 - 2 = 103, less 10 bps');
});

test('a percent trailing stop on a short trails the lowest low', async (t) => {
  const { broker } = setup(t);
  await broker.submit(order('trb', { side: 'buy', type: 'trailing_stop', trailPercent: 5 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 95, { open: 100, low: 90, high: 100 })); // stop 105 -> 94.5
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 95, { open: 93, low: 92, high: 95 })); // 94.5 is crossed at 95
  assert.deepEqual(await fillsOf(broker), [['trb', 94.5945]]);
});

test('a bracket whose take-profit fills has its stop-loss cancelled in the same step and the same durable write', async (t) => {
  const { broker, events, storage } = setup(t);
  const acks = await broker.submitGroup(bracket('g1', 105, 95));
  assert.deepEqual(
    acks.map((a) => a.brokerOrderId),
    ['paper-1', 'paper-2', 'paper-3'],
  );
  await broker.onBar(bar('QQQ', T0 + MIN, 101, { open: 100, low: 99.5, high: 104 }));
  assert.deepEqual(await fillsOf(broker), [['g1', 100.1]], 'the entry fills; the take-profit waits for the next bar');
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 104, { open: 101, low: 100.5, high: 106 }));
  assert.deepEqual(await fillsOf(broker), [
    ['g1', 100.1],
    ['g1-tp', 105],
  ]);
  assert.deepEqual(await openIds(broker), []);
  assert.deepEqual(
    events.slice(3).map((e) => [e.type, e.clientOrderId]),
    [
      ['fill', 'g1'],
      ['fill', 'g1-tp'],
      ['cancelled', 'g1-sl'],
    ],
  );
  const saved = storage.checkpoints.get<{ open: unknown[]; fills: unknown[] }>('paper-broker');
  assert.equal(saved?.open.length, 0, 'the fill and the cancel are one write');
  assert.deepEqual(await broker.positions(), {});
});

test('exits do not work before their entry fills, and in the entry bar only the stop-loss can fill', async (t) => {
  const { broker } = setup(t);
  await broker.submitGroup(bracket('g2', 101, 99, { type: 'limit', limitPrice: 100 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 102, { open: 102, low: 101.5, high: 103 }));
  assert.deepEqual(await fillsOf(broker), [], 'the take-profit does not fill while its entry has not');
  await broker.onBar(bar('QQQ', T0 + 2 * MIN, 99, { open: 101, low: 98, high: 102 }));
  assert.deepEqual(
    await fillsOf(broker),
    [
      ['g2', 100],
      ['g2-sl', 98.901],
    ],
    'entry at its limit, then the worse exit',
  );
  assert.deepEqual(await openIds(broker), []);
});

test('cancelling a bracket entry cancels its exits with it', async (t) => {
  const { broker, events } = setup(t);
  await broker.submitGroup(bracket('g3', 105, 95, { type: 'limit', limitPrice: 90 }));
  await broker.cancel('g3');
  assert.deepEqual(await openIds(broker), []);
  assert.deepEqual(
    events.filter((e) => e.type === 'cancelled').map((e) => e.clientOrderId),
    ['g3', 'g3-tp', 'g3-sl'],
  );
});

test('a restarted paper broker resumes a bracket intact: the exits still work and still cancel each other', async (t) => {
  const first = setup(t);
  await first.broker.submitGroup(bracket('g4', 105, 95));
  await first.broker.onBar(bar('QQQ', T0 + MIN, 100, { open: 100 }));
  await first.storage.close();

  const second = setup(t, { dir: first.dir });
  assert.deepEqual(await openIds(second.broker), ['g4-tp', 'g4-sl']);
  assert.deepEqual(
    await second.broker.submitGroup(bracket('g4', 105, 95)),
    [
      { clientOrderId: 'g4', brokerOrderId: 'paper-1' },
      { clientOrderId: 'g4-tp', brokerOrderId: 'paper-2' },
      { clientOrderId: 'g4-sl', brokerOrderId: 'paper-3' },
    ],
    'sending the group again creates nothing',
  );
  await second.broker.onBar(bar('QQQ', T0 + 2 * MIN, 94, { open: 96, low: 93, high: 96 }));
  assert.deepEqual(await fillsOf(second.broker), [
    ['g4', 100.1],
    ['g4-sl', 94.905],
  ]);
  assert.deepEqual(await openIds(second.broker), []);
  assert.deepEqual(
    second.events.map((e) => [e.type, e.clientOrderId]),
    [
      ['fill', 'g4-sl'],
      ['cancelled', 'g4-tp'],
    ],
  );
});

test('day orders are cancelled at an early close (13:00) by the calendar; gtc orders keep working', async (t) => {
  const calendar = new MarketCalendar();
  const noon = Date.UTC(2025, 10, 28, 17, 0); // Friday 2025-11-28, 12:00 New York; the market closes at 13:00
  const { broker, events, clock } = setup(t, { calendar, now: noon });
  await broker.submit(order('d1', { type: 'limit', limitPrice: 90, barStart: noon - MIN, tif: 'day' }));
  await broker.submit(order('g1', { type: 'limit', limitPrice: 90, barStart: noon - MIN, tif: 'gtc' }));
  await broker.onBar(bar('QQQ', noon + 59 * MIN, 95, { open: 95, low: 94, high: 96 })); // 12:59
  assert.deepEqual(await openIds(broker), ['d1', 'g1']);
  clock.set(noon + 61 * MIN);
  // 13:00: after hours; the bar trades through both limits, but the day order ended at the close.
  await broker.onBar(bar('QQQ', noon + 60 * MIN, 89, { open: 91, low: 88, high: 91 }));
  assert.deepEqual(await fillsOf(broker), [['g1', 90]]);
  const cancelled = events.find((e) => e.type === 'cancelled');
  assert.equal(cancelled?.clientOrderId, 'd1');
  assert.match((cancelled as { reason: string }).reason, /expired at the session close 2025-11-28T18:00:00.000Z/);
});

test('a day order with outside_rth works through the after-hours session and ends at its close', async (t) => {
  const calendar = new MarketCalendar();
  const noon = Date.UTC(2025, 10, 28, 17, 0);
  const { broker } = setup(t, { calendar, now: noon });
  await broker.submit(order('x1', { type: 'limit', limitPrice: 90, barStart: noon - MIN, outsideRth: true }));
  await broker.onBar(bar('QQQ', noon + 60 * MIN, 95, { open: 95, low: 94, high: 96 })); // 13:00, after hours
  assert.deepEqual(await openIds(broker), ['x1']);
  await broker.onBar(bar('QQQ', Date.UTC(2025, 10, 28, 22, 0), 89, { open: 89, low: 88, high: 89 })); // 17:00 NY: after-hours ended
  assert.deepEqual(await fillsOf(broker), []);
  assert.deepEqual(await openIds(broker), []);
});

test('an ioc limit that its first bar does not fill is cancelled', async (t) => {
  const { broker, events } = setup(t);
  await broker.submit(order('i1', { type: 'limit', limitPrice: 90, tif: 'ioc' }));
  await broker.submit(order('i2', { type: 'limit', limitPrice: 101, tif: 'ioc', qty: 10 }));
  await broker.onBar(bar('QQQ', T0 + MIN, 100, { open: 100, low: 99, high: 101 }));
  assert.deepEqual(await fillsOf(broker), [['i2', 100.1]]);
  assert.deepEqual(await openIds(broker), []);
  assert.deepEqual(
    events.filter((e) => e.type === 'cancelled').map((e) => e.clientOrderId),
    ['i1'],
  );
});

test('the paper broker refuses an order whose type fields are missing, naming the field', async (t) => {
  const { broker } = setup(t);
  await assert.rejects(broker.submit(order('e1', { type: 'stop' })), /stopPrice/);
  await assert.rejects(broker.submit(order('e2', { type: 'trailing_stop' })), /trailAmount/);
  await assert.rejects(broker.submit(order('e3', { type: 'stop', stopPrice: 9, tif: 'ioc' })), /tif/);
  await assert.rejects(broker.submit(order('e4', { side: 'sell', type: 'limit', limitPrice: 9, role: 'take_profit', groupId: 'nope' })), /entry nope/);
});
