/**
 * Live equals backtest: a paper session on the simulated market (the real engine: collector,
 * arbiter and trader in their worker threads, LMDB in a temp dir) driven by a shared manual clock,
 * then a backtest over the same cached bars, must give the same client order ids, fills and
 * positions. The arbiter's delivery log says which bars the trader was handed; `barkeep replay`
 * reads the same log, so the replay is checked here too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { CollectorRequests } from '../../src/actors/collector/protocol.ts';
import type { TraderRequests } from '../../src/actors/trader/protocol.ts';
import { specDefaults } from '../../src/backtest/defaults.ts';
import { replay } from '../../src/backtest/replay.ts';
import { runSpec } from '../../src/backtest/run.ts';
import { loadConfig } from '../../src/config/load.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import { startEngine } from '../../src/server/engine.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { waitFor } from '../helpers/wait.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0); // Monday 10:00 New York
const PRELOAD = 20;
const STEPS = 25;

const until = <T>(fn: () => Promise<T | undefined | false | null>, what: () => string, timeoutMs = 20_000): Promise<T> => waitFor(fn, { what, timeoutMs, intervalMs: 20 });

test('a paper session on the simulated market and a backtest over the same cached bars make the same orders, fills and positions', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-live-equals-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new SharedClockController(T0);
  t.after(() => clock.close());
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      server: { port: 0 },
      log: { level: 'silent' },
      collector: { symbols: ['QQQ', 'SPY'], backfill_days: 1 },
      feed: { preload_bars: PRELOAD },
      // A fast crossover, long and short, so a short session trades often.
      trader: { symbols: ['QQQ', 'SPY'], strategy: 'sma-crossover', strategy_params: { fast: 2, slow: 4, qty: 10, allowShort: true } },
    },
  });
  const engine = await startEngine(config, { log: pino({ level: 'silent' }), clock: clock.spec });
  let stopped = false;
  t.after(() => (stopped ? undefined : engine.stop()));
  const collector = engine.supervisor.handle<CollectorRequests>('collector');
  const trader = engine.supervisor.handle<TraderRequests>('trader');
  const cycle = async () => {
    const next = await until(
      async () => (await collector.call('status', {})).next_cycle_at,
      () => 'the next collector cycle',
    );
    clock.set(Date.parse(next));
    await until(
      async () => {
        const after = (await collector.call('status', {})).next_cycle_at;
        return after !== null && after > next;
      },
      () => `the cycle at ${next}`,
    );
  };
  const handled = async () => (await trader.call('status', {})).bars_collected;
  await cycle();
  await cycle();
  for (let i = 0; i < STEPS; i++) {
    const before = await handled();
    await cycle();
    await until(
      async () => (await handled()) >= before + 2,
      () => `the trader to handle step ${i}'s bars`,
    );
  }
  const live = await trader.call('status', {});
  await engine.stop();
  stopped = true;

  const storage = openStorage({ path: dir });
  t.after(() => storage.close());
  const delivered = storage.deliveries.range('1Min', 0, Number.MAX_SAFE_INTEGER);
  assert.ok(delivered.length >= 2 * STEPS, `the arbiter recorded ${delivered.length} deliveries`);
  assert.equal(delivered.length, live.bars_collected, 'one delivery record per bar the trader handled');
  const from = delivered[0].start;
  const to = delivered[delivered.length - 1].start + 60_000;
  const liveOrders = storage.orders.all().filter((o) => o.broker === 'paper');
  assert.ok(liveOrders.length >= 3, `the live session traded (${liveOrders.length} orders)`);

  const d = specDefaults(config);
  const { detail } = await runSpec({ ...d, symbols: ['QQQ', 'SPY'], from, to, warmup_bars: PRELOAD }, storage.bars);

  const ids = (os: Array<{ clientOrderId: string }>) => os.map((o) => o.clientOrderId).sort();
  assert.deepEqual(ids(detail.orders), ids(liveOrders), 'the same client order ids');
  const fills = (os: typeof liveOrders) => os.flatMap((o) => o.fills.map((f) => `${o.clientOrderId} ${o.side} ${f.qty}@${f.price} t=${f.time} c=${f.commission}`)).sort();
  assert.deepEqual(fills(detail.orders), fills(liveOrders), 'the same fills');
  const positions = (ps: Array<{ symbol: string; qty: number }>) => Object.fromEntries(ps.filter((p) => p.qty !== 0).map((p) => [p.symbol, p.qty]));
  const backtestPositions: Record<string, number> = {};
  for (const f of detail.fills) backtestPositions[f.symbol] = (backtestPositions[f.symbol] ?? 0) + (f.side === 'buy' ? f.qty : -f.qty);
  assert.deepEqual(positions(Object.entries(backtestPositions).map(([symbol, qty]) => ({ symbol, qty }))), positions(live.positions), 'the same positions');

  // The replay feeds exactly the delivered bars and finds each live order under the same id.
  const r = await replay({ storage, deliveries: storage.deliveries, barSize: '1Min', warmupBars: PRELOAD, spec: { ...d, symbols: null, from, to } });
  assert.equal(r.rows.length, delivered.length);
  assert.ok(
    r.rows.every((row) => row.rung === 'cache' || row.rung === 'preload'),
    'the rung each bar came from is recorded',
  );
  const sent = r.rows.flatMap((row) => row.decisions.filter((x) => x.action === 'submitted'));
  assert.deepEqual(sent.map((x) => x.client_order_id).sort(), ids(liveOrders));
  assert.ok(sent.every((x) => x.live?.startsWith('live: ') && !x.live.includes('no such order')));
  assert.ok(
    r.rows.every((row) => row.signals.length === 0 || /fast SMA\(2\)/.test(row.signals[0])),
    "each decision carries the strategy's reason",
  );

  // A replay from the middle of the session starts from the live book there and decides as live did.
  const mid = delivered[Math.floor(delivered.length / 2)].start;
  const half = await replay({ storage, deliveries: storage.deliveries, barSize: '1Min', warmupBars: PRELOAD, spec: { ...d, symbols: null, from: mid, to } });
  const book: Record<string, number> = {};
  for (const o of liveOrders) for (const f of o.fills) if (f.time <= mid) book[o.symbol] = (book[o.symbol] ?? 0) + (o.side === 'buy' ? f.qty : -f.qty);
  assert.deepEqual(half.initial_positions, Object.fromEntries(Object.entries(book).filter(([, q]) => q !== 0)));
  const halfSent = half.rows.flatMap((row) => row.decisions.filter((x) => x.action === 'submitted').map((x) => x.client_order_id));
  assert.deepEqual(halfSent.sort(), ids(liveOrders.filter((o) => o.barStart >= mid)));
});
