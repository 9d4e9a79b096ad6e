/**
 * The TWS simulator against an unmodified @stoqey/ib IBApi client. Any stoqey decoding error
 * ("unprocessed data left on queue", "Underrun error") fails the test (docs/tws-protocol.md, Pitfalls).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventName, IBApi, OrderAction, OrderType, SecType, BarSizeSetting, WhatToShow, type Contract, type Execution, type Order, type OrderState, type CommissionReport } from '@stoqey/ib';
import { ManualClock } from '../../src/market/clock.ts';
import { waitFor } from '../helpers/wait.ts';
import { startTwsSimulator, watchDecodingErrors, type TwsSimulator, type TwsSimulatorOptions } from './tws/index.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0); // 09:30 New York

const stock = (symbol: string): Contract => ({ symbol, secType: SecType.STK, exchange: 'SMART', currency: 'USD' });

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function sim(opts: TwsSimulatorOptions = {}): Promise<TwsSimulator> {
  const s = await startTwsSimulator({ barIntervalMs: 50, startTime: START, ...opts });
  cleanups.push(() => s.close());
  return s;
}

interface Client {
  api: IBApi;
  nextValidId: number;
  infos: { code: number; message: string }[];
  errors: { code: number; reqId: number; message: string }[];
  assertClean(): void;
}

async function connect(s: TwsSimulator, clientId: number): Promise<Client> {
  // No outgoing pacing: its queue drains in real time, which a test on a ManualClock does not wait for.
  const api = new IBApi({ host: s.host, port: s.port, maxReqPerSec: 1e6 });
  const guard = watchDecodingErrors(api);
  const infos: Client['infos'] = [];
  const errors: Client['errors'] = [];
  api.on(EventName.info, (message: string, code: number) => infos.push({ code, message }));
  api.on(EventName.error, (err: Error, code: number, reqId: number) => errors.push({ code, reqId, message: err.message }));
  const ready = firstEvent<[number]>(api, EventName.nextValidId, 'nextValidId').then(([v]) => v);
  api.connect(clientId);
  const nextValidId = await ready;
  const client = { api, nextValidId, infos, errors, assertClean: () => guard.assertClean() };
  cleanups.push(() => {
    if (api.isConnected) api.disconnect();
  });
  return client;
}

function collect<A extends unknown[]>(api: IBApi, event: EventName, filter: (...args: A) => boolean = () => true) {
  const seen: A[] = [];
  const h = (...args: A) => {
    if (filter(...args)) seen.push(args);
  };
  // IBApi's overloads are per event name; this helper listens to any of them.
  const emitter = api as unknown as { on(e: string, h: (...a: A) => void): void; off(e: string, h: (...a: A) => void): void };
  emitter.on(event, h);
  return {
    seen,
    stop: () => emitter.off(event, h),
    until(n: number, what = `${n} × ${event}`): Promise<A[]> {
      return waitFor(() => seen.length >= n && seen.slice(0, n), what);
    },
  };
}

/** The arguments of the first `event` that passes `filter`. */
async function firstEvent<A extends unknown[]>(api: IBApi, event: EventName, what: string, filter: (...args: A) => boolean = () => true): Promise<A> {
  const got = collect<A>(api, event, filter);
  const [first] = await got.until(1, what);
  got.stop();
  return first;
}

test('the handshake gives server version 193, the account, nextValidId and the farm notices', async () => {
  const s = await sim({ firstOrderId: 7 });
  const accounts = new Promise<string>((resolve) => {
    const api = new IBApi({ host: s.host, port: s.port });
    api.once(EventName.managedAccounts, (a: string) => resolve(a));
    api.connect(3);
    cleanups.push(() => {
      if (api.isConnected) api.disconnect();
    });
  });
  assert.equal(await accounts, 'DU1234567');
  const c = await connect(s, 1);
  assert.equal(c.api.serverVersion, 193);
  assert.equal(c.nextValidId, 7);
  await waitFor(() => c.infos.length >= 3, 'farm notices');
  assert.deepEqual(
    c.infos.map((i) => i.code),
    [2104, 2106, 2158],
  );
  assert.equal(s.connections, 2);
  c.assertClean();
});

test('a second client with a client id in use gets 326 and is disconnected', async () => {
  const s = await sim();
  const first = await connect(s, 5);
  // No outgoing pacing: its queue drains in real time, which a test on a ManualClock does not wait for.
  const api = new IBApi({ host: s.host, port: s.port, maxReqPerSec: 1e6 });
  const guard = watchDecodingErrors(api);
  const got326 = firstEvent<[string, number]>(api, EventName.info, '326', (_m: string, code: number) => code === 326).then(([, code]) => code);
  const disconnected = firstEvent(api, EventName.disconnected, 'disconnected');
  api.connect(5);
  assert.equal(await got326, 326);
  await disconnected;
  guard.assertClean();
  first.assertClean();
});

test('real-time bars arrive every simulated 5 seconds with the price path values, and stop on cancel', async () => {
  const s = await sim({ clock: new ManualClock(START) });
  const c = await connect(s, 1);
  const bars = collect<[number, number, number, number, number, number, number, number, number]>(c.api, EventName.realtimeBar, (id) => id === 11);
  c.api.reqRealTimeBars(11, stock('AAPL'), 5, WhatToShow.TRADES, false);
  await waitFor(() => s.realTimeSubscriptions('AAPL') === 1, 'the subscription');
  const subscribedAt = s.clock.now();
  await s.advanceUntil(() => bars.seen.length >= 4, 'four bars');
  assert.equal(s.clock.now() - subscribedAt, 15_000, 'the first bar at once, then one every 5 s');
  const got = bars.seen.slice(0, 4);
  for (let i = 1; i < got.length; i++) assert.equal(got[i][1] - got[i - 1][1], 5, 'bar times advance 5 s');
  for (const [, time, open, high, low, close, volume, wap, count] of got) {
    assert.equal(time % 5, 0);
    const expected = s.fiveSecondBar('AAPL', time * 1000);
    assert.deepEqual(
      { open, high, low, close, volume, wap, count },
      {
        open: expected.open,
        high: expected.high,
        low: expected.low,
        close: expected.close,
        volume: expected.volume,
        wap: expected.wap,
        count: expected.count,
      },
    );
  }
  assert.equal(s.realTimeSubscriptions('AAPL'), 1);
  c.api.cancelRealTimeBars(11);
  await waitFor(() => s.realTimeSubscriptions('AAPL') === 0, 'cancel to arrive');
  const n = bars.seen.length;
  await s.advance(60_000);
  assert.equal(bars.seen.length, n, 'no bar after the cancel arrived, over a simulated minute');
  c.assertClean();
});

test('historical bars come with formatDate 1 as New York time with a zone name, and the end marker', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  const h = collect<[number, string, number, number, number, number, number, number, number]>(c.api, EventName.historicalData, (id) => id === 21);
  c.api.reqHistoricalData(21, stock('MSFT'), '20250114 16:00:00 US/Eastern', '1800 S', BarSizeSetting.MINUTES_FIVE, WhatToShow.TRADES, 0, 1, false);
  await waitFor(() => h.seen.some((b) => b[1].startsWith('finished')), 'end marker');
  const bars = h.seen.filter((b) => !b[1].startsWith('finished'));
  assert.deepEqual(
    bars.map((b) => b[1]),
    ['20250114 15:30:00 US/Eastern', '20250114 15:35:00 US/Eastern', '20250114 15:40:00 US/Eastern', '20250114 15:45:00 US/Eastern', '20250114 15:50:00 US/Eastern', '20250114 15:55:00 US/Eastern'],
  );
  const first = s.prices.bar('MSFT', Date.UTC(2025, 0, 14, 20, 30), Date.UTC(2025, 0, 14, 20, 35));
  const [, , open, high, low, close, volume, count, wap] = bars[0];
  assert.deepEqual(
    { open, high, low, close, volume, count, wap },
    { open: first.open, high: first.high, low: first.low, close: first.close, volume: first.volume, count: first.count, wap: first.wap },
  );
  const marker = h.seen.find((b) => b[1].startsWith('finished'));
  assert.equal(marker?.[1], 'finished-20250114 15:30:00 US/Eastern-20250114 16:00:00 US/Eastern');
  c.assertClean();
});

test('historical bars come with formatDate 2 as epoch seconds, and daily bars as yyyyMMdd', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  const h = collect<[number, string]>(c.api, EventName.historicalData);
  c.api.reqHistoricalData(31, stock('MSFT'), '20250114-21:00:00', '600 S', BarSizeSetting.MINUTES_ONE, WhatToShow.TRADES, 0, 2, false);
  c.api.reqHistoricalData(32, stock('MSFT'), '20250114-21:00:00', '3 D', BarSizeSetting.DAYS_ONE, WhatToShow.TRADES, 0, 2, false);
  await waitFor(() => h.seen.filter((b) => b[1].startsWith('finished')).length === 2, 'two end markers');
  const intraday = h.seen.filter((b) => b[0] === 31 && !b[1].startsWith('finished')).map((b) => Number(b[1]));
  assert.equal(intraday.length, 10);
  assert.equal(intraday[0], Date.UTC(2025, 0, 14, 20, 50) / 1000);
  assert.equal(intraday[9], Date.UTC(2025, 0, 14, 20, 59) / 1000);
  const daily = h.seen.filter((b) => b[0] === 32 && !b[1].startsWith('finished')).map((b) => b[1]);
  assert.deepEqual(daily, ['20250112', '20250113', '20250114']);
  c.assertClean();
});

test('keepUpToDate sends HISTORICAL_DATA_UPDATE for the forming bar until cancelled', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  const updates = collect<[number, string, number, number, number, number]>(c.api, EventName.historicalDataUpdate, (id) => id === 41);
  c.api.reqHistoricalData(41, stock('IBM'), '', '300 S', BarSizeSetting.MINUTES_ONE, WhatToShow.TRADES, 0, 2, true);
  const got = await updates.until(3);
  for (const [, date, open, high, low, close] of got) {
    assert.equal(Number(date) % 60, 0);
    assert.ok(low <= Math.min(open, close) && high >= Math.max(open, close), 'open, close, high, low decoded in the right places');
  }
  c.api.cancelHistoricalData(41);
  c.assertClean();
});

test('market data errors by symbol: NOPERM gets 420, NOSUB 354, and a symbol can be switched at run time', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  c.api.reqRealTimeBars(51, stock('NOPERM'), 5, WhatToShow.TRADES, false);
  c.api.reqRealTimeBars(52, stock('NOSUB'), 5, WhatToShow.TRADES, false);
  s.setMarketDataError('QQQ', 420);
  c.api.reqRealTimeBars(53, stock('QQQ'), 5, WhatToShow.TRADES, false);
  c.api.reqHistoricalData(54, stock('NOPERM'), '', '600 S', BarSizeSetting.MINUTES_ONE, WhatToShow.TRADES, 0, 2, false);
  await waitFor(() => c.errors.length >= 4, 'four errors');
  const byReq = Object.fromEntries(c.errors.map((e) => [e.reqId, e.code]));
  assert.deepEqual(byReq, { 51: 420, 52: 354, 53: 420, 54: 420 });
  s.clearMarketDataError('QQQ');
  const bars = collect<[number]>(c.api, EventName.realtimeBar, (id) => id === 55);
  c.api.reqRealTimeBars(55, stock('QQQ'), 5, WhatToShow.TRADES, false);
  await bars.until(1);
  c.assertClean();
});

test('an injected pacing violation answers the historical request with 162', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  s.injectPacingViolations(1);
  c.api.reqHistoricalData(61, stock('AAPL'), '', '600 S', BarSizeSetting.MINUTES_ONE, WhatToShow.TRADES, 0, 2, false);
  await waitFor(() => c.errors.some((e) => e.reqId === 61), '162');
  const e = c.errors.find((x) => x.reqId === 61);
  assert.equal(e?.code, 162);
  assert.match(e?.message ?? '', /pacing violation/);
  assert.equal(s.pacingViolations, 1);
  c.assertClean();
});

test('a market order is acknowledged, filled, and its execution and commission reported', async () => {
  const s = await sim();
  const c = await connect(s, 9);
  const opens = collect<[number, Contract, Order, OrderState]>(c.api, EventName.openOrder);
  const statuses = collect<[number, string, number, number, number, number, number, number, number]>(c.api, EventName.orderStatus);
  const execs = collect<[number, Contract, Execution]>(c.api, EventName.execDetails);
  const comms = collect<[CommissionReport]>(c.api, EventName.commissionReport);
  const id = c.nextValidId;
  c.api.placeOrder(id, stock('AAPL'), { action: OrderAction.BUY, orderType: OrderType.MKT, totalQuantity: 300, orderRef: 'cid-1', transmit: true });
  await comms.until(1);
  await statuses.until(2);
  await opens.until(2);
  assert.deepEqual(
    opens.seen.map((o) => o[3].status),
    ['Submitted', 'Filled'],
  );
  const [, contract, order] = opens.seen[1];
  assert.equal(contract.symbol, 'AAPL');
  assert.equal(order.orderId, id);
  assert.equal(order.orderRef, 'cid-1');
  assert.equal(order.account, 'DU1234567');
  assert.equal(order.clientId, 9);
  assert.equal(order.totalQuantity, 300);
  assert.equal(order.action, 'BUY');
  assert.ok((order.permId ?? 0) > 0);
  const filled = statuses.seen[1];
  assert.equal(filled[0], id);
  assert.equal(filled[1], 'Filled');
  assert.equal(filled[2], 300);
  assert.equal(filled[3], 0);
  assert.equal(filled[5], order.permId);
  assert.equal(filled[8], 9);
  const [reqId, , exec] = (await execs.until(1))[0];
  assert.equal(reqId, -1, 'unsolicited executions carry reqId -1');
  assert.equal(exec.orderId, id);
  assert.equal(exec.side, 'BOT');
  assert.equal(exec.shares, 300);
  assert.equal(exec.price, filled[4]);
  assert.equal(exec.orderRef, 'cid-1');
  assert.equal(exec.acctNumber, 'DU1234567');
  assert.equal(comms.seen[0][0].execId, exec.execId);
  assert.equal(comms.seen[0][0].commission, 1.5);
  assert.equal(comms.seen[0][0].currency, 'USD');
  assert.equal(comms.seen[0][0].realizedPNL, undefined);
  assert.equal(s.placedOrders.length, 1);
  c.assertClean();
});

test('a resting limit order is listed by reqOpenOrders and cancelled with Cancelled and 202', async () => {
  const s = await sim();
  const c = await connect(s, 2);
  const id = c.nextValidId;
  const statuses = collect<[number, string]>(c.api, EventName.orderStatus, (oid) => oid === id);
  c.api.placeOrder(id, stock('AAPL'), { action: OrderAction.BUY, orderType: OrderType.LMT, lmtPrice: 1, totalQuantity: 10, orderRef: 'rest', transmit: true });
  await statuses.until(1);
  assert.equal(statuses.seen[0][1], 'Submitted');

  const listed = collect<[number, Contract, Order, OrderState]>(c.api, EventName.openOrder);
  const end = firstEvent(c.api, EventName.openOrderEnd, 'openOrderEnd');
  c.api.reqOpenOrders();
  await end;
  assert.deepEqual(
    listed.seen.map((o) => [o[0], o[2].orderRef, o[2].lmtPrice, o[3].status]),
    [[id, 'rest', 1, 'Submitted']],
  );

  const cancelled = collect<[number, string]>(c.api, EventName.orderStatus, (oid, st) => oid === id && st === 'Cancelled');
  c.api.cancelOrder(id);
  await cancelled.until(1);
  await waitFor(() => c.errors.some((e) => e.reqId === id && e.code === 202), '202');
  c.assertClean();
});

test('a limit order rests until the price crosses it, and reqExecutions reports the fill with its commission', async () => {
  const s = await sim();
  const c = await connect(s, 4);
  const id = c.nextValidId;
  const filled = collect<[number, string]>(c.api, EventName.orderStatus, (oid, st) => oid === id && st === 'Filled');
  const limit = s.currentPrice('TSLA') + 5; // far above the price: a buy crosses at once on the next bar
  c.api.placeOrder(id, stock('TSLA'), { action: OrderAction.BUY, orderType: OrderType.LMT, lmtPrice: limit, totalQuantity: 1000, orderRef: 'lmt', transmit: true });
  await filled.until(1);

  const execs = collect<[number, Contract, Execution]>(c.api, EventName.execDetails, (r) => r === 71);
  const comms = collect<[CommissionReport]>(c.api, EventName.commissionReport);
  const end = firstEvent<[number]>(c.api, EventName.execDetailsEnd, 'execDetailsEnd').then(([v]) => v);
  c.api.reqExecutions(71, {});
  assert.equal(await end, 71);
  assert.equal(execs.seen.length, 1);
  const exec = execs.seen[0][2];
  assert.equal(exec.orderId, id);
  assert.ok(exec.price! <= limit);
  assert.equal(exec.orderRef, 'lmt');
  assert.ok(comms.seen.some(([r]) => r.execId === exec.execId && r.commission === 5));
  c.assertClean();
});

test('reusing the id of a finished order gets 103 Duplicate order id', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  const id = c.nextValidId;
  const filled = collect<[number, string]>(c.api, EventName.orderStatus, (oid, st) => oid === id && st === 'Filled');
  c.api.placeOrder(id, stock('AAPL'), { action: OrderAction.SELL, orderType: OrderType.MKT, totalQuantity: 1, transmit: true });
  await filled.until(1);
  c.api.placeOrder(id, stock('AAPL'), { action: OrderAction.SELL, orderType: OrderType.MKT, totalQuantity: 1, transmit: true });
  await waitFor(() => c.errors.some((e) => e.reqId === id && e.code === 103), '103');
  assert.equal(s.placedOrders.length, 2);
  c.assertClean();
});

test('reqIds and reqCurrentTime answer on the simulated clock', async () => {
  const s = await sim({ firstOrderId: 40 });
  const c = await connect(s, 1);
  const ids = collect<[number]>(c.api, EventName.nextValidId);
  const times = collect<[number]>(c.api, EventName.currentTime);
  c.api.reqIds(1);
  c.api.reqCurrentTime();
  assert.equal((await ids.until(1))[0][0], 40);
  const [[t]] = await times.until(1);
  assert.ok(t >= START / 1000 && t <= s.clock.now() / 1000);
  c.assertClean();
});

test('after dropClients the client sees disconnected, and a reconnect gets a fresh nextValidId past used ids', async () => {
  const s = await sim();
  const c = await connect(s, 1);
  const id = c.nextValidId;
  const filled = collect<[number, string]>(c.api, EventName.orderStatus, (oid, st) => oid === id && st === 'Filled');
  c.api.placeOrder(id, stock('AAPL'), { action: OrderAction.BUY, orderType: OrderType.MKT, totalQuantity: 1, transmit: true });
  await filled.until(1);
  c.api.reqRealTimeBars(81, stock('AAPL'), 5, WhatToShow.TRADES, false);
  await waitFor(() => s.realTimeSubscriptions() === 1, 'subscription');
  const disconnected = firstEvent(c.api, EventName.disconnected, 'disconnected');
  s.dropClients();
  await disconnected;
  assert.equal(s.realTimeSubscriptions(), 0, 'server-side subscriptions die with the socket');
  const again = firstEvent<[number]>(c.api, EventName.nextValidId, 'nextValidId').then(([v]) => v);
  await waitFor(() => s.activeConnections() === 0, 'the server side of the socket closed');
  c.api.connect(1);
  assert.ok((await again) > id);
  c.assertClean();
});

test('1100 stops the bars, 1102 resumes them, 1101 drops the subscriptions on the server', async () => {
  const s = await sim({ clock: new ManualClock(START) });
  const c = await connect(s, 1);
  const bars = collect<[number, number]>(c.api, EventName.realtimeBar);
  c.api.reqRealTimeBars(91, stock('AAPL'), 5, WhatToShow.TRADES, false);
  await s.advanceUntil(() => bars.seen.length >= 2, 'two bars');
  s.sendNotice(1100);
  await waitFor(() => c.infos.some((i) => i.code === 1100), '1100');
  const during = bars.seen.length;
  await s.advance(60_000);
  assert.equal(bars.seen.length, during, 'no bars while the link is lost, over a simulated minute');
  s.sendNotice(1102);
  await s.advanceUntil(() => bars.seen.length >= during + 2, 'bars again after 1102');
  s.sendNotice(1101);
  await waitFor(() => c.infos.some((i) => i.code === 1101), '1101');
  assert.equal(s.realTimeSubscriptions(), 0);
  c.assertClean();
});

test('a silenced symbol stops getting bars while the socket and other symbols stay healthy', async () => {
  const s = await sim({ clock: new ManualClock(START) });
  const c = await connect(s, 1);
  const a = collect<[number]>(c.api, EventName.realtimeBar, (id) => id === 101);
  const b = collect<[number]>(c.api, EventName.realtimeBar, (id) => id === 102);
  c.api.reqRealTimeBars(101, stock('AAPL'), 5, WhatToShow.TRADES, false);
  c.api.reqRealTimeBars(102, stock('MSFT'), 5, WhatToShow.TRADES, false);
  await s.advanceUntil(() => a.seen.length >= 2 && b.seen.length >= 2, 'two bars of each');
  s.silence('AAPL');
  const silentAt = a.seen.length;
  const otherAt = b.seen.length;
  await s.advanceUntil(() => b.seen.length >= otherAt + 5, 'five more MSFT bars');
  assert.equal(a.seen.length, silentAt);
  s.unsilence('AAPL');
  await s.advanceUntil(() => a.seen.length >= silentAt + 2, 'AAPL bars again');
  c.assertClean();
});

test('with fillMode next-bar a market order is Submitted first and fills at the next 5-second bar', async () => {
  // On the manual clock: no bar comes between the order and the check that it is still working.
  const s = await sim({ fillMode: 'next-bar', clock: new ManualClock(START) });
  const c = await connect(s, 3);
  const id = c.nextValidId;
  const statuses = collect<[number, string, number, number, number]>(c.api, EventName.orderStatus, (oid) => oid === id);
  c.api.placeOrder(id, stock('IBM'), { action: OrderAction.BUY, orderType: OrderType.MKT, totalQuantity: 2, transmit: true });
  await statuses.until(1);
  assert.equal(statuses.seen[0][1], 'Submitted');
  assert.equal(s.orderById(id)?.status, 'Submitted');
  await s.advanceUntil(() => statuses.seen.length >= 2, 'the fill at the next bar');
  const filled = statuses.seen[1];
  assert.equal(filled[1], 'Filled');
  const exec = s.executions().find((e) => e.orderId === id);
  assert.ok(exec && exec.price === filled[4]);
  c.assertClean();
});
