/** Shared pieces of the trader tests: real LMDB in a temp dir, bars, a log that keeps what it was told. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bar } from '../../src/market/bar.ts';
import { openStorage, type Storage } from '../../src/storage/storage.ts';
import type { TraderLog } from '../../src/actors/trader/orders.ts';
import type { Signal, Strategy } from '../../src/actors/trader/strategies/contract.ts';
import type { Broker } from '../../src/actors/trader/broker.ts';
import { OrderManager, type ReconcileReport } from '../../src/actors/trader/order-manager.ts';
import { PaperBroker } from '../../src/actors/trader/paper-broker.ts';
import { type RiskConfigInput, RiskEngine } from '../../src/actors/trader/risk.ts';
import { TradingLoop } from '../../src/actors/trader/trading-loop.ts';
import type { ExitSettings } from '../../src/actors/trader/order-types.ts';
import { ManualClock } from '../../src/market/clock.ts';
import type { BrokerEvent } from '../../src/actors/trader/broker.ts';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import { connectIbkrBroker, type IbkrBroker } from '../../src/actors/trader/ibkr-broker.ts';
import { startTwsSimulator, type TwsSimulator } from '../fakes/tws/index.ts';
import type { TwsSimulatorOptions } from '../fakes/tws/server.ts';
import type { OrderRecord } from '../../src/storage/types.ts';

export const T0 = Date.UTC(2025, 5, 2, 14, 0); // Monday 2025-06-02 10:00 New York, regular session
export const MIN = 60_000;

/** A pending 100-share QQQ market buy of strategy `t` at T0, with `o` on top. */
export function order(id: string, o: Partial<OrderRecord> = {}): OrderRecord {
  return {
    clientOrderId: id,
    strategy: 't',
    symbol: 'QQQ',
    side: 'buy',
    qty: 100,
    type: 'market',
    broker: 'paper',
    state: 'pending',
    filledQty: 0,
    avgFillPrice: 0,
    commission: 0,
    fills: [],
    barStart: T0,
    reason: 'test',
    createdAt: T0,
    updatedAt: T0,
    ...o,
  };
}

export function tempDir(t: { after(fn: () => void | Promise<void>): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-trader-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens storage over `dir`; closed when the test ends (closing twice is harmless). */
export function storageAt(t: { after(fn: () => void | Promise<void>): void }, dir: string): Storage {
  const s = openStorage({ path: dir });
  t.after(() => s.close());
  return s;
}

export function bar(symbol: string, start: number, close: number, o: Partial<Bar> = {}): Bar {
  return {
    symbol,
    barSize: '1Min',
    start,
    open: o.open ?? close,
    high: o.high ?? Math.max(close, o.open ?? close),
    low: o.low ?? Math.min(close, o.open ?? close),
    close,
    volume: 1000,
    vwap: NaN,
    trades: -1,
    source: 'sim',
    receivedAt: start + MIN,
    ...o,
  };
}

/** Bars one minute apart from `start` with the given closes (open = previous close). */
export function series(symbol: string, start: number, closes: readonly number[]): Bar[] {
  return closes.map((c, i) => bar(symbol, start + i * MIN, c, { open: i === 0 ? c : closes[i - 1] }));
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export class MemoryLog implements TraderLog {
  readonly lines: LogLine[] = [];
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', obj, msg });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', obj, msg });
  }
  has(level: LogLine['level'], re: RegExp): boolean {
    return this.lines.some((l) => l.level === level && re.test(l.msg));
  }
}

/**
 * A strategy that says what it is told: `script` maps a bar's start to the signals for that bar.
 * Lets a test drive the loop with exact orders (user strategies are plain objects like this).
 */
export function scripted(name: string, script: Map<number, Signal | Signal[]>): Strategy {
  return {
    name,
    warmUp() {},
    onBar(_symbol: string, b: Bar) {
      return script.get(b.start);
    },
  };
}

export interface Rig {
  dir: string;
  storage: Storage;
  clock: ManualClock;
  broker: PaperBroker;
  risk: RiskEngine;
  orders: OrderManager;
  loop: TradingLoop;
  log: MemoryLog;
  report: ReconcileReport;
  /** Feeds bars in order, each at its close time on the clock. */
  feed(bars: readonly Bar[]): Promise<void>;
}

export const WIDE_LIMITS: RiskConfigInput = {
  maxPositionPerSymbol: 10_000,
  maxOrderNotional: 1_000_000,
  maxGrossExposure: 10_000_000,
  maxDailyLoss: 1_000_000,
  maxOrdersPerMinute: 1000,
  allowedSessions: ['always'],
};

/** The real trading stack over LMDB in `dir` (a new temp dir when omitted), started and reconciled. */
export async function rig(
  t: { after(fn: () => void | Promise<void>): void },
  opts: { dir?: string; strategy: Strategy; risk?: Partial<RiskConfigInput>; broker?: (b: PaperBroker, s: Storage) => Broker; slippageBps?: number; exits?: ExitSettings },
): Promise<Rig> {
  const dir = opts.dir ?? tempDir(t);
  const storage = storageAt(t, dir);
  const clock = new ManualClock(T0);
  const paper = new PaperBroker({ checkpoints: storage.checkpoints, clock, slippageBps: opts.slippageBps ?? 10, commissionPerShare: 0.005, minCommission: 1, startingCash: 100_000 });
  const broker = opts.broker ? opts.broker(paper, storage) : paper;
  const risk = new RiskEngine({ ...WIDE_LIMITS, ...opts.risk });
  const log = new MemoryLog();
  const orders = new OrderManager({ journal: storage.orders, broker, risk, clock, log, checkpoints: storage.checkpoints });
  const report = await orders.start();
  const loop = new TradingLoop({ strategy: opts.strategy, risk, orders, clock, log, ...(opts.exits ? { exits: opts.exits } : {}) });
  return {
    dir,
    storage,
    clock,
    broker: paper,
    risk,
    orders,
    loop,
    log,
    report,
    async feed(bars) {
      for (const b of bars) {
        clock.set(b.start + MIN);
        await loop.onBar(b);
      }
      await orders.idle();
    },
  };
}

// ---------------------------------------------------------------- IBKR against the TWS simulator

/** Monday 2025-06-02 10:00 New York: where the IBKR suites start the simulator's clock. */
export const START = Date.UTC(2025, 5, 2, 14, 0);
export const CLIENT_ID = 7;

export type TestContext = { after(fn: () => void | Promise<void>): void };

/** Closes what a test opened, last opened first. */
export function closer(t: TestContext): (fn: () => unknown) => void {
  const fns: Array<() => unknown> = [];
  t.after(async () => {
    for (const fn of fns.reverse()) await fn();
  });
  return (fn) => void fns.push(fn);
}

/** One run of the trader on the ibkr broker. */
export interface Life {
  /** The simulator this life trades with (its manual clock is the clock of everything here). */
  sim: TwsSimulator;
  storage: Storage;
  broker: IbkrBroker;
  orders: OrderManager;
  log: MemoryLog;
  /** Every event the broker emitted in this life. */
  events: BrokerEvent[];
  report: ReconcileReport;
}

/** One run of the trader: storage over `dir`, an IbkrBroker on CLIENT_ID, an OrderManager started (and so reconciled). */
export async function life(t: TestContext, sim: TwsSimulator, dir: string, onClose: (fn: () => unknown) => void, reconnectInitialMs = 1_000): Promise<Life> {
  const storage = storageAt(t, dir);
  const log = new MemoryLog();
  const broker = await connect(sim, log, onClose, reconnectInitialMs);
  const events: BrokerEvent[] = [];
  broker.onEvent((e) => events.push(e));
  const orders = new OrderManager({ journal: storage.orders, broker, risk: new RiskEngine(WIDE_LIMITS), clock: sim.clock, log, checkpoints: storage.checkpoints });
  const report = await orders.start();
  return { sim, storage, broker, orders, log, events, report };
}

export async function connect(sim: TwsSimulator, log: MemoryLog, onClose: (fn: () => unknown) => void, reconnectInitialMs = 1_000): Promise<IbkrBroker> {
  const cfg = { host: sim.host, port: sim.port, clientId: CLIENT_ID, reconnectInitialMs, reconnectMaxMs: 20_000 };
  // The broker's own timeouts and heartbeat are the defaults: on the manual clock no simulated time passes while a
  // message is in transit, so a loaded machine cannot make them fire. The client library's outgoing queue drains in
  // real time: unbounded here, so no message waits while the clock moves.
  const broker = await connectIbkrBroker(cfg, { clock: sim.clock, log }, { maxRequestsPerSecond: 1e6 });
  onClose(() => broker.close());
  return broker;
}

/**
 * A TWS simulator on a ManualClock from START (or `opts.startTime`), closed with the test: simulated
 * time moves only when the test moves it (`sim.advance`, `sim.advanceUntil`, `journaled`).
 */
export async function simulator(onClose: (fn: () => unknown) => void, opts: Omit<TwsSimulatorOptions, 'clock' | 'barIntervalMs'> = {}): Promise<TwsSimulator> {
  const { startTime = START, ...rest } = opts;
  const sim = await startTwsSimulator({ ...rest, clock: new ManualClock(startTime) });
  onClose(() => sim.close());
  return sim;
}

/** Where a decision of strategy `t` on the START bar comes from, and the id it gets. */
export const at = (index: number) => ({ strategy: 't', barStart: START, index });
export const idOf = (index: number, symbol = 'AAPL') => clientOrderId('t', symbol, START, index);

/**
 * Resolves with the journal's record of `id` once it is in `state`, moving the simulator's clock
 * (once nothing is in transit) until then; fails after ten simulated minutes.
 */
export async function journaled(l: Pick<Life, 'storage' | 'sim'>, id: string, state: OrderRecord['state']): Promise<OrderRecord> {
  const get = () => {
    const r = l.storage.orders.get(id);
    return r?.state === state ? r : undefined;
  };
  await l.sim.advanceUntil(() => get() !== undefined, `${id} ${state} in the journal`);
  return get()!;
}

/** How many PLACE_ORDER messages the simulator received for each orderRef. */
export function placements(sim: TwsSimulator): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of sim.placedOrders) out[p.orderRef] = (out[p.orderRef] ?? 0) + 1;
  return out;
}
