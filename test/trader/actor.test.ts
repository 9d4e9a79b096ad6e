/**
 * The trader actor end to end, in process: the real engine (collector, arbiter and trader in their
 * worker threads, the simulated market, the paper broker, LMDB in a temp dir) on a shared manual
 * clock, so every collector cycle (one a minute) is one step the test takes. The trader is crashed with the supervisor's
 * drill before an order is sent, after it is sent and after it filled; after each restart the
 * journal, the positions and the paper broker's own state must agree, and no order may have been
 * accepted twice.
 *
 * The strategy is test/fixtures/trader-hold-strategy.ts: it wants 10 shares of QQQ from its first
 * live bar on, so the whole run has exactly one order unless something sends one twice.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import type { CollectorRequests } from '../../src/actors/collector/protocol.ts';
import type { TraderRequests, TraderStatus } from '../../src/actors/trader/protocol.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ManualClock } from '../../src/market/clock.ts';
import { SharedClockController } from '../../src/runtime/clock.ts';
import type { ActorHandle } from '../../src/runtime/supervisor.ts';
import { startEngine, type Engine } from '../../src/server/engine.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { disagreement, PAPER_BROKER_KEY, type PaperState } from '../fixtures/trader-agreement.ts';
import { waitFor } from '../helpers/wait.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0); // Monday 10:00 New York
const MIN = 60_000;
const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));
const QTY = 10;
/** The id the hold strategy gives its order for the bar starting at `barStart`. */
const holdId = (barStart: number) => clientOrderId('hold', 'QQQ', barStart, 0);

type TestContext = { after(fn: () => void | Promise<void>): void };

const until = <T>(fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, what: () => string, timeoutMs = 15_000): Promise<T> =>
  waitFor(fn, { what, timeoutMs, intervalMs: 20 });

interface Rig {
  engine: Engine;
  storage: Storage;
  trader: ActorHandle<TraderRequests>;
  clock: SharedClockController;
  status(): Promise<TraderStatus>;
  paper(): PaperState | undefined;
  journal(): OrderRecord[];
  /** Moves the clock to the collector's next cycle and waits until the trader has handled the new bar. */
  step(): Promise<TraderStatus>;
  /**
   * Orders this incarnation of the trader handed to the broker (its submitted counter). The paper
   * broker ignores a resubmitted id, so its own state alone would not show a second send.
   */
  submittedHere(): Promise<number>;
  /** Crashes the trader through the drill and waits until its new incarnation is warmed up. */
  crashAndRestart(): Promise<void>;
}

/**
 * Starts the engine over `dir` on a manual clock at T0, after `seed` has written what a previous
 * run left behind; then runs the collector's first cycle, which fills the cache the trader warms up from.
 */
async function boot(t: TestContext, seed?: (s: Storage) => Promise<void>): Promise<Rig> {
  // Undone last to first: the engine stops before its directory goes.
  const cleanup: Array<() => unknown> = [];
  t.after(async () => {
    for (const undo of cleanup.reverse()) await undo();
  });
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-trader-actor-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  if (seed) {
    const s = openStorage({ path: dir });
    try {
      await seed(s);
    } finally {
      await s.close();
    }
  }
  const clock = new SharedClockController(T0);
  cleanup.push(() => clock.close());
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      server: { port: 0 },
      log: { level: 'silent' },
      runtime: { faults: true },
      collector: { symbols: ['QQQ'], backfill_days: 1 },
      trader: { symbols: ['QQQ'], strategy: 'module', strategy_module: HOLD, strategy_params: { qty: QTY } },
    },
  });
  const engine = await startEngine(config, { log: pino({ level: 'silent' }), clock: clock.spec, policy: { backoffInitialMs: 20 } });
  cleanup.push(() => engine.stop());
  const trader = engine.supervisor.handle<TraderRequests>('trader');

  const warmupBars = async () => (await engine.supervisor.actorMetrics('trader')).find((m) => m.name === 'barkeep_trader_warmup_bars_total')?.value ?? 0;
  const collector = engine.supervisor.handle<CollectorRequests>('collector');
  /**
   * Moves the clock to the collector's next cycle (one per minute, just after the bar closes). It
   * waits for the cycle to be scheduled first: a cycle still running when the clock passes its
   * successor's time would schedule that one later, and the step would bring no bar.
   */
  const runCollectorCycle = async () => {
    const next = await until(
      async () => (await collector.call('status', {})).next_cycle_at,
      () => 'the collector to schedule its next cycle',
    );
    clock.set(Date.parse(next));
    await until(
      async () => {
        const after = (await collector.call('status', {})).next_cycle_at;
        return after !== null && after > next;
      },
      () => `the collector's cycle at ${next} to finish`,
    );
  };
  const traderInfo = () => engine.supervisor.list().find((a) => a.name === 'trader')!;

  const rig: Rig = {
    engine,
    storage: engine.storage,
    trader,
    clock,
    status: () => trader.call('status', {}),
    paper: () => engine.storage.checkpoints.get<PaperState>(PAPER_BROKER_KEY),
    journal: () => engine.storage.orders.all(),
    async step() {
      const before = (await rig.status()).last_bar_time;
      await runCollectorCycle();
      return until(
        async () => {
          const s = await rig.status();
          return s.last_bar_time !== null && (before === null || s.last_bar_time > before) && s;
        },
        () => `a bar after ${before} at ${new Date(clock.now()).toISOString()}`,
      );
    },
    async submittedHere() {
      const samples = await engine.supervisor.actorMetrics('trader');
      return samples.find((m) => m.name === 'barkeep_orders_submitted_total' && m.labels.broker === 'paper')?.value ?? 0;
    },
    async crashAndRestart() {
      const restarts = traderInfo().restarts;
      await engine.supervisor.crash('trader');
      await until(
        () => traderInfo().state === 'running' && traderInfo().restarts === restarts + 1,
        () => 'the trader to run again',
      );
      // The new incarnation's warm-up proves the arbiter has its subscription: the next bar is live.
      await until(
        async () => (await warmupBars()) > 0,
        () => 'the restarted trader to warm up',
      );
    },
  };
  await runCollectorCycle();
  await until(
    async () => (await warmupBars()) > 0,
    () => 'the trader to warm up from the first collection',
  );
  // The first cycle (at T0) backfilled through the 14:59 bar; the one at 15:00:03 finds nothing
  // closed yet. From 15:01:03 on, each cycle brings exactly one new bar.
  await runCollectorCycle();
  return rig;
}

/** Waits for the journal's trailing writes (not awaited on the hot path), then requires agreement. */
async function assertAgree(rig: Rig): Promise<void> {
  let last: string | null = null;
  const check = async () => disagreement(rig.journal(), rig.paper(), await rig.trader.call('positions', {}));
  await until(
    async () => (last = await check()) === null,
    () => `agreement; last: ${last}`,
    5_000,
  );
}

function pendingRecord(barStart: number, createdAt: number): OrderRecord {
  return {
    clientOrderId: holdId(barStart),
    strategy: 'hold',
    symbol: 'QQQ',
    side: 'buy',
    qty: QTY,
    type: 'market',
    broker: 'paper',
    state: 'pending',
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart,
    reason: `hold ${QTY}`,
    createdAt,
    updatedAt: createdAt,
  };
}

test('a pending order journaled before a crash is sent exactly once by the restarted trader and fills once', async (t) => {
  const record = pendingRecord(T0 - MIN, T0 - 30_000);
  const rig = await boot(t, (s) => s.orders.put(record));

  const sent = rig.storage.orders.get(record.clientOrderId);
  assert.equal(sent?.state, 'submitted', 'reconciled at start: sent, before any bar');
  assert.equal(sent?.brokerOrderId, 'paper-1');
  assert.equal(rig.paper()?.accepted, 1);
  assert.equal(await rig.submittedHere(), 1);

  await rig.step();
  const filled = await until(
    async () => (await rig.status()).positions.find((p) => p.symbol === 'QQQ'),
    () => 'the fill',
  );
  assert.equal(filled.qty, QTY);
  await rig.crashAndRestart();
  await rig.step();
  await assertAgree(rig);
  assert.equal(await rig.submittedHere(), 0, 'the restarted trader sent nothing');
  assert.deepEqual(
    rig.journal().map((r) => [r.clientOrderId, r.state]),
    [[record.clientOrderId, 'filled']],
    'the met target sent nothing more',
  );
  assert.equal(rig.paper()!.accepted, 1);
  assert.equal(rig.paper()!.fills.length, 1);
});

test('an order the broker accepted before the acknowledgement was journaled is adopted, not sent again', async (t) => {
  const record = pendingRecord(T0 - MIN, T0 - 30_000);
  const rig = await boot(t, async (s) => {
    await s.orders.put(record);
    // The previous run died after the broker had the order and before the journal heard back.
    await new PaperBroker({ checkpoints: s.checkpoints, clock: new ManualClock(T0 - 29_000) }).submit(record);
  });

  assert.equal(rig.storage.orders.get(record.clientOrderId)?.state, 'submitted');
  assert.equal(rig.storage.orders.get(record.clientOrderId)?.brokerOrderId, 'paper-1');
  assert.equal(rig.paper()!.accepted, 1);
  assert.equal(await rig.submittedHere(), 0, 'adopted at start, not sent again');
  await rig.step();
  await rig.step();
  await assertAgree(rig);
  assert.equal(rig.paper()!.accepted, 1);
  assert.equal(await rig.submittedHere(), 0);
  assert.equal(rig.storage.orders.get(record.clientOrderId)?.state, 'filled');
  assert.equal((await rig.status()).positions[0]?.qty, QTY);
});

test('a trader crashed after sending an order does not send it again after its restart', async (t) => {
  const rig = await boot(t);
  const first = await rig.step();
  assert.equal(first.open_orders.length, 1, 'the first live bar sent one order');
  const id = first.open_orders[0].client_order_id;
  assert.equal(id, holdId(Date.parse(first.last_bar_time!)));
  await assertAgree(rig);
  assert.equal(rig.paper()!.open.length, 1, 'working at the broker, not yet filled');

  await rig.crashAndRestart();
  const resumed = await rig.status();
  assert.deepEqual(
    resumed.open_orders.map((o) => [o.client_order_id, o.state]),
    [[id, 'submitted']],
    'the restarted trader knows its working order',
  );
  assert.equal(rig.paper()!.accepted, 1);

  await rig.step();
  await rig.step();
  await assertAgree(rig);
  assert.equal(await rig.submittedHere(), 0, 'the restarted trader sent nothing');
  assert.deepEqual(
    rig.journal().map((r) => [r.clientOrderId, r.state, r.filledQty]),
    [[id, 'filled', QTY]],
  );
  assert.equal(rig.paper()!.accepted, 1, 'one order accepted across the crash');
  assert.equal(rig.paper()!.fills.length, 1);
});

test('a trader crashed after a fill comes back with the same positions, in agreement with the journal and the broker', async (t) => {
  const rig = await boot(t);
  await rig.step();
  await rig.step();
  const before = await rig.status();
  assert.equal(before.positions.length, 1);
  assert.equal(before.positions[0].qty, QTY);
  assert.equal(before.open_orders.length, 0);
  await assertAgree(rig);
  const cash = rig.paper()!.cash;
  assert.ok(cash < 100_000, 'the buy was paid for');

  await rig.crashAndRestart();
  const after = await rig.status();
  assert.deepEqual(
    after.positions.map((p) => [p.symbol, p.qty, p.avg_price]),
    before.positions.map((p) => [p.symbol, p.qty, p.avg_price]),
    'positions rebuilt from the journal before any new bar',
  );
  assert.equal(after.is_running, true, 'the live session resumed');
  assert.equal(after.last_bar_time, before.last_bar_time, 'status shows the last bar the trader had');
  await rig.step();
  await rig.step();
  await assertAgree(rig);
  assert.equal(rig.journal().length, 1, 'no order after the restart: the target was already met');
  assert.equal(await rig.submittedHere(), 0);
  assert.equal(rig.paper()!.accepted, 1);
  assert.equal(rig.paper()!.cash, cash);
});

test('a pending order found after a crash while the kill switch is engaged is cancelled, not sent', async (t) => {
  const record = pendingRecord(T0 - MIN, T0 - 30_000);
  const rig = await boot(t, async (s) => {
    await s.orders.put(record);
    await s.checkpoints.put('trader-kill-switch', { at: T0 - 20_000 });
  });
  assert.equal(rig.storage.orders.get(record.clientOrderId)?.state, 'cancelled');
  const status = await rig.step();
  assert.equal(status.risk.killed, true, 'the kill switch outlived the restart');
  assert.equal(status.risk.last_refusal, 'kill switch engaged', 'the strategy asked again and was refused');
  assert.equal(rig.paper()?.accepted ?? 0, 0, 'nothing reached the broker');
  assert.equal(rig.journal().length, 1);
});
