/**
 * The trading loop through its HTTP API, as a user runs it: `barkeep serve` as a child process with
 * no vendor keys (the simulated market and the paper broker) on an accelerated clock, one simulated
 * minute per real second, so every bar is a second of waiting.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openStorage } from '../../src/storage/storage.ts';
import { serve, until, type Served } from '../helpers/serve.ts';
import { disagreement, PAPER_BROKER_KEY, type PaperState } from '../fixtures/trader-agreement.ts';

const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));
/** A fixed start makes the simulated prices, and so the strategies' decisions, the same every run. */
const FAST = `runtime:\n  clock: accelerated\n  clock_speed: 60\n  clock_start: "2026-01-05T15:00:00Z"\n`;
const ORDER_STATES = ['pending', 'submitted', 'partially_filled', 'filled', 'cancelled', 'rejected'];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The config for the hold strategy (test/fixtures/trader-hold-strategy.ts) with these params. */
function holdYaml(params: Record<string, unknown>): string {
  return `${FAST}trader:\n  strategy: module\n  strategy_module: ${JSON.stringify(HOLD)}\n  strategy_params: ${JSON.stringify(params)}\n`;
}

async function status(app: Served): Promise<any> {
  const r = await app.get('/live/status');
  assert.equal(r.status, 200);
  return r.body;
}

/** Waits until the trading loop has handled more bars than `than`. */
function barsAfter(app: Served, than: number, what = `bars_collected above ${than}`): Promise<any> {
  return until(async () => {
    const s = await status(app);
    return s.bars_collected > than && s;
  }, what);
}

function qtyOf(positions: Array<{ symbol: string; qty: number }>, symbol: string): number {
  return positions.find((p) => p.symbol === symbol)?.qty ?? 0;
}

test('the default run trades the simulated market: bars, signals, orders, fills and positions appear', async () => {
  await using app = await serve({ yaml: FAST });
  const first = await barsAfter(app, 0);
  const traded = await until(
    async () => {
      const s = await status(app);
      // Trading can begin before the first read; what must follow is more bars reaching the loop.
      return s.positions.length > 0 && s.bars_collected > first.bars_collected && s;
    },
    'a filled order, a position, and bars_collected rising',
    45_000,
  );
  assert.ok(traded.bars_collected > first.bars_collected, 'bars_collected rises');
  assert.ok(traded.signals > 0);
  assert.notEqual(traded.cash, 100_000, 'the fills moved cash');
  assert.equal(traded.is_running, true);
  assert.equal(traded.strategy, 'sma-crossover');
  assert.equal(traded.broker, 'paper');

  const { body } = await app.get('/orders');
  assert.ok(body.orders.length > 0);
  for (const o of body.orders) {
    assert.match(o.client_order_id, /^bk-sma-crossover-(QQQ|SPY)-[0-9a-z]+-[0-9a-z]+$/);
    assert.ok(ORDER_STATES.includes(o.state), o.state);
    assert.match(o.created_at, ISO);
  }
  assert.equal(new Set(body.orders.map((o: any) => o.client_order_id)).size, body.orders.length, 'client order ids are unique');
  const filled = body.orders.filter((o: any) => o.state === 'filled');
  assert.ok(filled.length > 0);
  for (const o of filled) {
    assert.equal(o.filled_qty, o.qty);
    assert.equal(typeof o.avg_fill_price, 'number');
    assert.match(o.broker_order_id, /^paper-\d+$/);
  }

  const now = await status(app);
  const positions = (await app.get('/positions')).body.positions;
  assert.ok(positions.length > 0);
  for (const p of positions) assert.deepEqual(Object.keys(p).sort(), ['avg_price', 'last_price', 'market_value', 'symbol', 'qty', 'unrealized_pnl'].sort());
  // The status a user reads.
  assert.match(now.last_bar_time, ISO);
  assert.equal(typeof now.bars_collected, 'number');
  for (const symbol of ['QQQ', 'SPY']) {
    const f = now.feed[symbol];
    assert.ok(f, `feed for ${symbol}`);
    assert.ok(['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'].includes(f.rung), f.rung);
    assert.match(f.since, ISO);
    assert.equal(typeof f.reason, 'string');
    assert.ok(f.reason.length > 0);
  }
  assert.ok(Array.isArray(now.open_orders));
  for (const k of ['realized', 'unrealized', 'total']) assert.equal(typeof now.pnl_today[k], 'number', `pnl_today.${k}`);
  assert.equal(now.risk.killed, false);
  assert.equal(typeof now.risk.refusals, 'object');
  assert.deepEqual(now.paused_symbols, {});

  // Stopped, so no bar fills anything more: the positions are what the filled orders add up to.
  assert.equal((await app.post('/live/stop')).status, 200);
  const tally = async () => {
    const orders = (await app.get('/orders')).body.orders;
    const held = (await app.get('/positions')).body.positions;
    const fromOrders: Record<string, number> = {};
    for (const o of orders) fromOrders[o.symbol] = (fromOrders[o.symbol] ?? 0) + (o.side === 'buy' ? o.filled_qty : -o.filled_qty);
    const a = JSON.stringify(
      Object.entries(fromOrders)
        .filter(([, q]) => q !== 0)
        .sort(),
    );
    const b = JSON.stringify(held.map((p: any) => [p.symbol, p.qty]).sort());
    return { a, b };
  };
  let last = await tally();
  await until(async () => (last = await tally()).a === last.b, 'the last fill to settle', 5_000).catch(() => undefined);
  assert.equal(last.a, last.b, 'positions equal the sum of filled orders');
});

test('POST /live/start with a bad body gets a 400 naming the field, and the running loop goes on', async () => {
  await using app = await serve({ yaml: FAST });
  await barsAfter(app, 0);
  const cases: Array<[unknown, string]> = [
    [{ symbols: ['not a symbol'] }, 'symbols.0'],
    [{ symbols: ['QQQ', 'spy!'] }, 'symbols.1'],
    [{ symbols: [] }, 'symbols'],
    [{ bar_size: '7Min' }, 'bar_size'],
    [{ broker: 'schwab' }, 'broker'],
    [{ broker: 'ibkr' }, 'broker'], // ibkr is not enabled in the config
    [{ strategy: 'no-such-strategy' }, 'strategy'],
    [{ strategy: 'module' }, 'strategy'], // no trader.strategy_module configured
    [{ strategy: 'sma-crossover', strategy_params: { fast: 0 } }, 'strategy_params.fast'],
    [{ strategy: 'sma-crossover', strategy_params: { speed: 3 } }, 'strategy_params.speed'],
    [{ strategy_params: 'fast' }, 'strategy_params'],
    [{ symbols: ['QQQ'], leverage: 10 }, 'leverage'],
  ];
  for (const [body, field] of cases) {
    const r = await app.post('/live/start', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.field, field, JSON.stringify(body));
    assert.ok(r.body.message.length > 0);
  }
  // Regression: a refused start used to unsubscribe the running loop first, which then saw no bars.
  const before = await status(app);
  assert.equal(before.is_running, true);
  assert.equal(before.strategy, 'sma-crossover');
  assert.deepEqual(before.symbols, ['QQQ', 'SPY']);
  await barsAfter(app, before.bars_collected + 1, 'bars to keep arriving after the refused starts');

  const ok = await app.post('/live/start', { symbols: ['SPY'], strategy: 'mean-reversion', bar_size: '1Min', broker: 'paper' });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.is_running, true);
  // Symbols that hold a position stay in the loop (issue 16: a start must not orphan positions).
  assert.equal(ok.body.symbols[0], 'SPY');
  for (const extra of ok.body.symbols.slice(1)) assert.notEqual(qtyOf(ok.body.positions, extra), 0, `${extra} kept: it holds a position`);
  assert.equal(ok.body.strategy, 'mean-reversion');
  await barsAfter(app, ok.body.bars_collected, 'bars for the new session');
});

test('POST /live/stop stops the loop: bars_collected stops rising while the collector goes on', async () => {
  await using app = await serve({ yaml: FAST });
  await barsAfter(app, 0);
  const stopped = await app.post('/live/stop');
  assert.equal(stopped.status, 200);
  assert.equal(stopped.body.is_running, false);

  const collected = async () => (await app.get('/data-collector/status')).body.last_collection_times.QQQ as string;
  const collectedAfter = (t: string) => until(async () => (await collected()) > t && collected(), `a collection after ${t}`);
  const held = (await status(app)).bars_collected;
  // Two more collector cycles: bars reach the cache, none reach the stopped loop.
  await collectedAfter(await collectedAfter(await collected()));
  const later = await status(app);
  assert.equal(later.is_running, false);
  assert.equal(later.bars_collected, held);

  const restarted = await app.post('/live/start', {});
  assert.equal(restarted.status, 200);
  assert.equal(restarted.body.is_running, true);
  await barsAfter(app, held, 'bars after /live/start');
});

test('the kill switch cancels working orders, flattens, and refuses new orders until resume', async () => {
  // 10 shares of each symbol, plus a 1-share limit buy at half the price that stays working.
  await using app = await serve({ yaml: holdYaml({ qty: 10, restingLimit: true }) });
  const bad = await app.post('/live/kill', { flatten: 'yes' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.field, 'flatten');
  assert.equal((await status(app)).risk.killed, false, 'a refused kill engages nothing');

  const holding = await until(
    async () => {
      const s = await status(app);
      const ready = qtyOf(s.positions, 'QQQ') === 10 && qtyOf(s.positions, 'SPY') === 10 && s.open_orders.length === 2;
      return ready && s;
    },
    'both positions and the two resting limit orders',
    30_000,
  );
  const resting = holding.open_orders.map((o: any) => o.client_order_id).sort();
  assert.ok(holding.open_orders.every((o: any) => o.type === 'limit' && o.state === 'submitted'));

  const kill = await app.post('/live/kill', { flatten: true });
  assert.equal(kill.status, 200);
  assert.equal(kill.body.risk.killed, true);
  assert.ok(!kill.body.open_orders.some((o: any) => resting.includes(o.client_order_id)), 'the resting orders are no longer open');
  const afterKill = (await app.get('/orders')).body.orders;
  for (const id of resting) assert.equal(afterKill.find((o: any) => o.client_order_id === id).state, 'cancelled', id);
  const flatten = afterKill.filter((o: any) => o.strategy === 'flatten');
  assert.deepEqual(flatten.map((o: any) => [o.symbol, o.side, o.qty]).sort(), [
    ['QQQ', 'sell', 10],
    ['SPY', 'sell', 10],
  ]);
  const holdOrders = afterKill.filter((o: any) => o.strategy === 'hold').length;

  // The flatten fills on the next bar; then the strategy asks for its shares again and is refused.
  const flat = await until(
    async () => {
      const s = await status(app);
      return s.positions.length === 0 && s.open_orders.length === 0 && s.risk.refusals.kill_switch >= 2 && s;
    },
    'flat, and the strategy refused by the kill switch',
    20_000,
  );
  assert.equal(flat.risk.killed, true);
  assert.equal(flat.risk.last_refusal, 'kill switch engaged');
  const whileKilled = (await app.get('/orders')).body.orders;
  assert.equal(whileKilled.filter((o: any) => o.strategy === 'hold').length, holdOrders, 'no new order while killed');
  assert.ok(whileKilled.filter((o: any) => o.strategy === 'flatten').every((o: any) => o.state === 'filled'));

  const resumed = await app.post('/live/resume');
  assert.equal(resumed.status, 200);
  assert.equal(resumed.body.risk.killed, false);
  const back = await until(
    async () => {
      const s = await status(app);
      return qtyOf(s.positions, 'QQQ') === 11 && qtyOf(s.positions, 'SPY') === 11 && s;
    },
    'the strategy trading again after resume',
    20_000,
  );
  assert.equal(back.risk.killed, false);
});

test('a user strategy that throws for one symbol pauses that symbol while the other keeps trading', async () => {
  await using app = await serve({ yaml: holdYaml({ qty: 10, throwFor: 'SPY' }) });
  const s = await until(
    async () => {
      const st = await status(app);
      return qtyOf(st.positions, 'QQQ') === 10 && st.paused_symbols.SPY && st;
    },
    'QQQ traded and SPY paused',
    30_000,
  );
  assert.match(s.paused_symbols.SPY, /hold: no model for SPY/);
  assert.deepEqual(Object.keys(s.paused_symbols), ['SPY']);
  assert.ok(s.strategy_errors >= 1);
  assert.equal(s.is_running, true);
  assert.equal(s.strategy, 'hold', "the status names the module's strategy as its orders do");
  const orders = (await app.get('/orders')).body.orders;
  assert.ok(orders.some((o: any) => o.symbol === 'QQQ' && o.state === 'filled'));
  assert.ok(!orders.some((o: any) => o.symbol === 'SPY'), 'nothing traded for the paused symbol');
  const trader = (await app.get('/actors')).body.actors.find((a: any) => a.name === 'trader');
  assert.equal(trader.state, 'running');
  assert.equal(trader.restarts, 0, 'the throw did not crash the trader');
  await barsAfter(app, s.bars_collected, 'bars to keep arriving');
});

test('a trader crashed through the drill route while trading resumes, and the journal and the paper broker agree', async () => {
  await using app = await serve({ yaml: FAST, env: { BARKEEP_FAULTS: '1' } });
  const before = await until(
    async () => {
      const s = await status(app);
      return s.positions.length > 0 && s;
    },
    'a position before the crash',
    45_000,
  );
  const crash = await app.post('/actors/trader/crash');
  assert.equal(crash.status, 202);
  await until(async () => {
    const t = (await app.get('/actors')).body.actors.find((a: any) => a.name === 'trader');
    return t.state === 'running' && t.restarts === 1;
  }, 'the trader to run again');
  const resumed = await status(app);
  assert.equal(resumed.is_running, true, 'the live session resumed by itself');
  assert.ok(resumed.last_bar_time >= before.last_bar_time);
  // Trading goes on: the restarted trader handles new bars.
  const later = await barsAfter(app, resumed.bars_collected + 2, 'bars after the restart');
  assert.ok(later.last_bar_time > resumed.last_bar_time);
  const positions = (await app.get('/positions')).body.positions;
  const orders = (await app.get('/orders')).body.orders;
  assert.equal(new Set(orders.map((o: any) => o.client_order_id)).size, orders.length);

  // Stopped cleanly, then read the engine's own records: one story, no order accepted twice.
  const { code } = await app.stop();
  assert.equal(code, 0);
  const storage = openStorage({ path: join(app.dir, 'data') });
  try {
    const journal = storage.orders.all();
    const paper = storage.checkpoints.get<PaperState>(PAPER_BROKER_KEY);
    assert.ok(paper && paper.accepted > 0);
    const held = Object.entries(paper.positions).map(([symbol, p]) => ({ symbol, qty: p.qty }));
    assert.equal(disagreement(journal, paper, held), null);
    // What the API showed before the stop is what the journal holds (a bar may have filled more since).
    for (const o of orders)
      assert.ok(
        journal.some((r) => r.clientOrderId === o.client_order_id),
        o.client_order_id,
      );
    assert.ok(positions.length > 0);
  } finally {
    await storage.close();
  }
});
