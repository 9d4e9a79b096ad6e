/**
 * The trading loop's thread: takes bar keys from the arbiter, reads each bar from the cache, and
 * runs it through the strategy, risk checks and the order manager (see trading-loop.ts and
 * order-manager.ts). Its live session (symbols, strategy, broker) and the last bar it saw per symbol
 * are checkpointed, so a restarted trader resumes; orders are reconciled from the journal and the
 * broker before anything new is sent.
 */
import type { Bar, BarSource } from '../../market/bar.ts';
import { isValidSymbol } from '../../market/bar.ts';
import { isBarSize, type BarSize } from '../../market/bar-size.ts';
import { MarketCalendar } from '../../market/calendar.ts';
import { defineActor, type ActorContext } from '../../runtime/actor.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import { openStorage } from '../../storage/storage.ts';
import type { OrderRecord } from '../../storage/types.ts';
import type { ArbiterToTrader, TraderToArbiter } from '../arbiter/protocol.ts';
import type { Broker } from './broker.ts';
import { reportingJournal } from './order-events.ts';
import { OrderManager } from './order-manager.ts';
import { EXIT_KEYS_SNAKE, exitsFromSnake, exitsProblem, exitsToSnake, orderTypeView } from './order-types.ts';
import { PaperBroker } from './paper-broker.ts';
import { TraderError, type LiveStart, type OrderView, type PositionView, type TraderConfig, type TraderRequests, type TraderStatus } from './protocol.ts';
import { RiskEngine } from './risk.ts';
import { createStrategy } from './strategies/registry.ts';
import { TradingLoop } from './trading-loop.ts';

const SESSION_KEY = 'trader';

interface Session {
  running: boolean;
  live: LiveStart | null;
  lastSeen: Record<string, number>;
}

function invalid(field: string, message: string): Error {
  return new TraderError('BAD_REQUEST', message, { field });
}

function iso(ts: number | undefined | null): string | null {
  return ts === undefined || ts === null || !Number.isFinite(ts) ? null : new Date(ts).toISOString();
}

export function orderView(r: OrderRecord): OrderView {
  return {
    client_order_id: r.clientOrderId,
    broker_order_id: r.brokerOrderId ?? null,
    strategy: r.strategy,
    symbol: r.symbol,
    side: r.side,
    qty: r.qty,
    ...orderTypeView(r),
    state: r.state,
    filled_qty: r.filledQty,
    avg_fill_price: r.filledQty > 0 ? r.avgFillPrice : null,
    commission: r.commission,
    reason: r.reason,
    reject_reason: r.rejectReason ?? null,
    created_at: new Date(r.createdAt).toISOString(),
    updated_at: new Date(r.updatedAt).toISOString(),
  };
}

export default defineActor<TraderRequests, TraderConfig>({
  async start(ctx: ActorContext<TraderConfig>) {
    const cfg = ctx.config;
    const storage = openStorage({ path: cfg.dataDir, sourcePrecedence: cfg.storage.sourcePrecedence as BarSource[] });
    const calendar = new MarketCalendar();
    const risk = new RiskEngine(
      { ...cfg.risk, allowedSessions: cfg.alwaysOpen ? ['always'] : cfg.risk.allowedSessions },
      calendar,
    );
    const arbiter = ctx.peer<TraderToArbiter, ArbiterToTrader>('arbiter');
    const managers = new Map<'paper' | 'ibkr', OrderManager>();
    const closers: Array<() => Promise<void> | void> = [];

    async function managerFor(kind: 'paper' | 'ibkr'): Promise<OrderManager> {
      const existing = managers.get(kind);
      if (existing) return existing;
      let broker: Broker;
      let onReconnect: ((cb: () => void) => void) | undefined;
      if (kind === 'paper') {
        // Day orders end at the NYSE close; the 24/7 simulated market has no close to end them at.
        broker = new PaperBroker({ checkpoints: storage.checkpoints, clock: ctx.clock, ...cfg.paper, ...(cfg.alwaysOpen ? {} : { calendar }) });
      } else {
        if (!cfg.ibkr) throw invalid('broker', 'broker: ibkr needs ibkr.enabled: true in the config (and TWS or IB Gateway)');
        const { connectIbkrBroker } = await import('./ibkr-broker.ts');
        const ib = await connectIbkrBroker(cfg.ibkr, ctx);
        closers.push(() => ib.close());
        onReconnect = (cb) => ib.onReconnect(cb);
        broker = ib;
      }
      const manager = new OrderManager({ journal: reportingJournal(storage.orders, ctx.emit, orderView), broker, risk, clock: ctx.clock, log: ctx.log, checkpoints: storage.checkpoints });
      const report = await manager.start();
      // Orders settled at TWS while the connection was down are reconciled as soon as it is back.
      onReconnect?.(() => void manager.reconcile().catch((err) => ctx.log.warn({ err }, 'reconcile after reconnect failed')));
      ctx.log.info({ broker: kind, ...report, discrepancies: report.discrepancies }, 'order manager started');
      managers.set(kind, manager);
      return manager;
    }

    const session: Session = storage.checkpoints.get<Session>(SESSION_KEY) ?? { running: false, live: null, lastSeen: {} };
    let loop: TradingLoop | null = null;
    let manager: OrderManager | null = null;
    let barsCollected = 0;
    // A restarted trader shows the last bar it had until a new one is handled.
    let lastBarTime: number | null = Object.values(session.lastSeen).reduce<number | null>((a, b) => (a === null || b > a ? b : a), null);
    let warmupBars = 0;
    let saving = false;

    const saveSession = () => {
      if (saving) return;
      saving = true;
      queueMicrotask(() => {
        saving = false;
        void storage.checkpoints.put(SESSION_KEY, session);
      });
    };

    arbiter.on('warmup', (m) => {
      if (!loop || !session.live || m.barSize !== session.live.bar_size) return;
      if (m.starts.length === 0) return;
      const bars = storage.bars.range(m.symbol, m.barSize, m.starts[0], m.starts[m.starts.length - 1]);
      warmupBars += bars.length;
      loop.warmUp(m.symbol, bars);
      ctx.log.info({ symbol: m.symbol, bars: bars.length }, 'strategy warmed up');
    });
    arbiter.on('bar', (m) => {
      if (!loop || !session.live || m.barSize !== session.live.bar_size) return;
      if (m.start <= (session.lastSeen[m.symbol] ?? -Infinity)) return;
      const bar: Bar | undefined = storage.bars.get(m.symbol, m.barSize, m.start);
      if (!bar) {
        ctx.log.warn({ symbol: m.symbol, start: m.start }, 'a bar handed on is not in the cache');
        return;
      }
      session.lastSeen[m.symbol] = m.start;
      saveSession();
      // Counted once handled, so a status that shows this bar also shows the orders it led to.
      void loop.onBar(bar).then(() => {
        barsCollected++;
        lastBarTime = Math.max(lastBarTime ?? -Infinity, m.start);
      });
    });
    arbiter.on('feed', (m) => ctx.log.debug({ symbol: m.symbol, rung: m.rung, reason: m.reason }, 'feed changed'));

    /** Everything that can refuse the request happens before the running loop is touched. */
    async function begin(live: LiveStart, resumed: boolean): Promise<void> {
      const strategy = await createStrategy({
        name: live.strategy,
        params: live.strategy_params ?? {},
        ...(cfg.strategyModule && live.strategy === 'module' ? { module: cfg.strategyModule } : {}),
      }).catch((err) => {
        throw Object.assign(err, { field: err.field ?? (err.code === 'STRATEGY_PARAMS' ? 'strategy_params' : 'strategy') });
      });
      const next = await managerFor(live.broker);
      if (loop) arbiter.send({ type: 'unsubscribe' });
      manager = next;
      const exits = exitsFromSnake(live.exits === undefined ? cfg.exits : live.exits);
      loop = new TradingLoop({ strategy, risk, orders: manager, clock: ctx.clock, log: ctx.log, ...(exits ? { exits } : {}) });
      const sameFeed = resumed || (session.live?.bar_size === live.bar_size && session.running);
      if (!sameFeed) session.lastSeen = {};
      session.running = true;
      session.live = live;
      // A resumed session is the one on disk already: no write (and no flush behind the collector's) before serving.
      if (!resumed) await storage.checkpoints.put(SESSION_KEY, session);
      arbiter.send({ type: 'subscribe', symbols: live.symbols, barSize: live.bar_size, after: session.lastSeen, warmup: true });
      ctx.log.info({ ...live, resumed }, 'trading loop started');
    }

    function validate(live: LiveStart): LiveStart {
      if (!Array.isArray(live.symbols) || live.symbols.length === 0) throw invalid('symbols', 'symbols: needs at least one symbol');
      live.symbols.forEach((s, i) => {
        if (!isValidSymbol(s)) throw invalid(`symbols.${i}`, `symbols.${i}: ${JSON.stringify(s)} is not a ticker symbol`);
      });
      if (!isBarSize(live.bar_size)) throw invalid('bar_size', `bar_size: ${JSON.stringify(live.bar_size)} is not a bar size`);
      if (live.broker !== 'paper' && live.broker !== 'ibkr') throw invalid('broker', 'broker: must be paper or ibkr');
      const exitsBad = exitsProblem(live.exits, 'exits.', EXIT_KEYS_SNAKE);
      if (exitsBad) throw invalid(exitsBad.field, `${exitsBad.field}: ${exitsBad.message}`);
      return { ...live, symbols: [...new Set(live.symbols)], bar_size: live.bar_size as BarSize };
    }

    function positions(): PositionView[] {
      if (!manager) return [];
      return manager.positions()
        .filter((p) => p.qty !== 0)
        .map((p) => {
          const last = manager!.lastPrice(p.symbol) ?? null;
          return {
            symbol: p.symbol,
            qty: p.qty,
            avg_price: p.avgPrice,
            last_price: last,
            market_value: last === null ? null : last * p.qty,
            unrealized_pnl: last === null ? null : (last - p.avgPrice) * p.qty,
          };
        });
    }

    function status(): TraderStatus {
      const st = loop?.status();
      const refusals: Record<string, number> = {};
      if (manager) for (const [rule, n] of Object.entries(manager.counters.refused)) if (n) refusals[rule] = n;
      const recent = st?.risk.recentRefusals ?? [];
      return {
        is_running: session.running && loop !== null,
        symbols: session.live?.symbols ?? [],
        bar_size: session.live?.bar_size ?? null,
        strategy: session.live?.strategy ?? null,
        broker: session.live?.broker ?? null,
        last_bar_time: iso(lastBarTime),
        bars_collected: barsCollected,
        signals: st?.counters.signals ?? 0,
        positions: positions(),
        open_orders: (manager?.openOrders() ?? []).map(orderView),
        pnl_today: st ? { realized: st.pnl.realized, unrealized: st.pnl.unrealized, total: st.pnl.total } : { realized: 0, unrealized: 0, total: 0 },
        cash: st?.cash ?? null,
        risk: { killed: risk.killed, refusals, last_refusal: recent.length ? recent[recent.length - 1].reason : null },
        paused_symbols: Object.fromEntries((st?.pausedSymbols ?? []).map((p) => [p.symbol, p.reason])),
        strategy_errors: st?.counters.strategyErrors ?? 0,
        exits: exitsToSnake(loop?.exits),
      };
    }

    if (session.running && session.live) {
      await begin(session.live, true);
    } else if (!storage.checkpoints.get<Session>(SESSION_KEY) && cfg.autostart) {
      await begin(validate(cfg.autostart), false);
    } else {
      // Reconcile the default broker's orders even when not trading.
      manager = await managerFor('paper');
    }

    return {
      handlers: {
        async start(req) {
          const live = validate({ ...req });
          await begin(live, false);
          return status();
        },
        async stop() {
          arbiter.send({ type: 'unsubscribe' });
          session.running = false;
          loop = null;
          await storage.checkpoints.put(SESSION_KEY, session);
          ctx.log.info('trading loop stopped');
          return status();
        },
        status: () => status(),
        orders: () => storage.orders.all().slice(-1000).map(orderView),
        positions: () => positions(),
        async kill({ flatten }) {
          if (!manager) manager = await managerFor(session.live?.broker ?? 'paper');
          const report = await manager.kill({ flatten: Boolean(flatten) });
          ctx.log.warn({ flatten, cancelled: report.cancelled.length, errors: report.errors }, 'kill switch engaged');
          return status();
        },
        async resume() {
          if (manager) await manager.resume();
          else risk.resume();
          ctx.log.info('kill switch released');
          return status();
        },
      },
      async stop() {
        for (const m of managers.values()) await m.idle();
        await storage.checkpoints.put(SESSION_KEY, session);
        for (const close of closers) await close();
        await storage.close();
      },
      metrics(): MetricSample[] {
        const st = loop?.status();
        const out: MetricSample[] = [
          { name: 'barkeep_trader_bars_total', help: 'Bars the trading loop received', type: 'counter', labels: {}, value: barsCollected },
          { name: 'barkeep_trader_warmup_bars_total', help: 'Bars given to strategies as warm-up', type: 'counter', labels: {}, value: warmupBars },
          { name: 'barkeep_trader_signals_total', help: 'Signals from strategies', type: 'counter', labels: {}, value: st?.counters.signals ?? 0 },
          { name: 'barkeep_trader_strategy_errors_total', help: 'Strategy calls that threw', type: 'counter', labels: {}, value: st?.counters.strategyErrors ?? 0 },
          { name: 'barkeep_trader_killed', help: '1 while the kill switch is engaged', type: 'gauge', labels: {}, value: risk.killed ? 1 : 0 },
        ];
        for (const [kind, m] of managers) {
          const c = m.counters;
          out.push(
            { name: 'barkeep_orders_submitted_total', help: 'Orders handed to the broker', type: 'counter', labels: { broker: kind }, value: c.submitted },
            { name: 'barkeep_orders_fills_total', help: 'Fills applied', type: 'counter', labels: { broker: kind }, value: c.fills },
            { name: 'barkeep_orders_rejected_total', help: 'Orders the broker rejected', type: 'counter', labels: { broker: kind }, value: c.rejected },
          );
          for (const [rule, n] of Object.entries(c.refused)) {
            out.push({ name: 'barkeep_risk_refusals_total', help: 'Orders refused by a risk rule', type: 'counter', labels: { broker: kind, rule }, value: n });
          }
        }
        return out;
      },
    };
  },
});
