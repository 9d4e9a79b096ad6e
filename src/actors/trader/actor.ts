/**
 * The trading loop's thread: takes bar keys from the arbiter, reads each bar from the cache, and
 * runs it through the strategy, risk checks and the order manager (see trading-loop.ts and
 * order-manager.ts). Its live session (symbols, strategy, broker) and the last bar it saw per symbol
 * are checkpointed, so a restarted trader resumes; orders are reconciled from the journal and the
 * broker before anything new is sent.
 */
import { FencedBroker } from './fenced-broker.ts';
import type { Bar, BarSource } from '../../market/bar.ts';
import { isValidSymbol } from '../../market/bar.ts';
import { isBarSize, type BarSize } from '../../market/bar-size.ts';
import { MarketCalendar } from '../../market/calendar.ts';
import { defineActor, type ActorContext } from '../../runtime/actor.ts';
import type { MetricSample } from '../../runtime/protocol.ts';
import { openStorage } from '../../storage/storage.ts';
import type { OrderRecord } from '../../storage/types.ts';
import type { ArbiterToTrader, BarRef, TraderToArbiter } from '../arbiter/protocol.ts';
import { forEachBar } from '../arbiter/trader-batch.ts';
import type { Broker } from './broker.ts';
import { reportingJournal } from './order-events.ts';
import { OrderManager } from './order-manager.ts';
import { EXIT_KEYS_SNAKE, exitsFromSnake, exitsProblem, exitsToSnake, orderTypeView } from './order-types.ts';
import { PaperBroker } from './paper-broker.ts';
import { TraderError, type LiveStart, type OrderView, type PositionView, type TraderConfig, type TraderRequests, type TraderStatus } from './protocol.ts';
import { RiskEngine } from './risk.ts';
import { createStrategy } from './strategies/registry.ts';
import { TradingLoop } from './trading-loop.ts';
import { fillView, fillsOf, filterOrders } from './order-queries.ts';
import { displayMoney, displayPrice, portfolioGauges, resumeRule, type StartedBy } from './session.ts';
import { createNotifier } from '../../notify/webhook.ts';

const SESSION_KEY = 'trader';

interface Session {
  running: boolean;
  live: LiveStart | null;
  lastSeen: Record<string, number>;
  /** Who chose the running settings: the config at start, a saved session resumed, or POST /live/start. */
  startedBy?: StartedBy;
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
    const risk = new RiskEngine({ ...cfg.risk, allowedSessions: cfg.alwaysOpen ? ['always'] : cfg.risk.allowedSessions }, calendar);
    const arbiter = ctx.peer<TraderToArbiter, ArbiterToTrader>('arbiter');
    const managers = new Map<'paper' | 'ibkr', OrderManager>();
    const notifier = createNotifier(cfg.notify, ctx.log);
    const closers: Array<() => Promise<void> | void> = [];

    // Cluster mode: orders are appended through the fence before any broker sees them, and only for
    // the symbols this node was started on (adopted when the cluster hands them over).
    // The NATS client is loaded only in cluster mode.
    const fenced = cfg.cluster ? await (await import('../../cluster/trader-fence.ts')).openOrderFence(cfg.cluster) : null;
    if (fenced) closers.push(() => fenced.close());

    async function managerFor(kind: 'paper' | 'ibkr'): Promise<OrderManager> {
      const existing = managers.get(kind);
      if (existing) return existing;
      let broker: Broker;
      let onReconnect: ((cb: () => void) => void) | undefined;
      if (kind === 'paper') {
        // Day orders end at the NYSE close; the 24/7 simulated market has no close to end them at.
        const paper = { clock: ctx.clock, ...cfg.paper, ...(cfg.alwaysOpen ? {} : { calendar }) };
        // Cluster mode: one paper account for every node, kept in JetStream (cluster/paper-shared.ts).
        broker = fenced ? await fenced.paperBroker(paper) : new PaperBroker({ checkpoints: storage.checkpoints, ...paper });
      } else {
        if (!cfg.ibkr) throw invalid('broker', 'broker: ibkr needs ibkr.enabled: true in the config (and TWS or IB Gateway)');
        const { connectIbkrBroker } = await import('./ibkr-broker.ts');
        const ib = await connectIbkrBroker(cfg.ibkr, ctx);
        closers.push(() => ib.close());
        onReconnect = (cb) => ib.onReconnect(cb);
        broker = ib;
      }
      if (fenced) broker = new FencedBroker(broker, fenced.fence);
      const manager = new OrderManager({
        journal: reportingJournal(storage.orders, ctx.emit, orderView),
        broker,
        risk,
        clock: ctx.clock,
        log: ctx.log,
        checkpoints: storage.checkpoints,
        onFill: (r, f) => notifier.send('fill', { ...fillView(r, f), order_state: r.state }),
      });
      const report = await manager.start();
      // Orders settled at TWS while the connection was down are reconciled as soon as it is back.
      onReconnect?.(() => void manager.reconcile().catch((err) => ctx.log.warn({ err }, 'reconcile after reconnect failed')));
      ctx.log.info({ broker: kind, ...report, discrepancies: report.discrepancies }, 'order manager started');
      managers.set(kind, manager);
      return manager;
    }

    const session: Session = storage.checkpoints.get<Session>(SESSION_KEY) ?? { running: false, live: null, lastSeen: {} };
    let loop: TradingLoop | null = null;
    let strategyName: string | null = null;
    let manager: OrderManager | null = null;
    let barsCollected = 0;
    // A restarted trader shows the last bar it had until a new one is handled.
    let lastBarTime: number | null = Object.values(session.lastSeen).reduce<number | null>((a, b) => (a === null || b > a ? b : a), null);
    let warmupBars = 0;
    let saving = false;

    // The checkpointed position per symbol is the last bar whose decision is done (journaled), not
    // the last bar received: a crash in between must get that bar again after the restart.
    const handled: Record<string, number> = { ...session.lastSeen };
    /** Loops replaced by a start while they were still deciding bars, until they are done. */
    const retiring = new Set<Promise<void>>();
    // Once per event-loop turn, not per bar: each arbiter message drains the microtasks, so a
    // microtask here rewrote every symbol's position once per bar of a burst (quadratic).
    const saveSession = () => {
      if (saving) return;
      saving = true;
      setImmediate(() => {
        saving = false;
        void storage.checkpoints.put(SESSION_KEY, { ...session, lastSeen: { ...handled } });
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
    // The arbiter sends the bars of one of its turns as one `bars` message.
    arbiter.on('bar', (m) => onBarKey(m));
    arbiter.on('bars', (m) => forEachBar(m, onBarKey));
    function onBarKey(m: BarRef): void {
      if (!loop || !session.live || m.barSize !== session.live.bar_size) return;
      if (m.start <= (session.lastSeen[m.symbol] ?? -Infinity)) return;
      const bar: Bar | undefined = storage.bars.get(m.symbol, m.barSize, m.start);
      if (!bar) {
        ctx.log.warn({ symbol: m.symbol, start: m.start }, 'a bar handed on is not in the cache');
        return;
      }
      session.lastSeen[m.symbol] = m.start;
      const symbol = m.symbol;
      const start = m.start;
      // Counted once handled, so a status that shows this bar also shows the orders it led to.
      void loop.onBar(bar).then(() => {
        barsCollected++;
        lastBarTime = Math.max(lastBarTime ?? -Infinity, start);
        if (start > (handled[symbol] ?? -Infinity)) handled[symbol] = start;
        saveSession();
      });
    }
    arbiter.on('feed', (m) => {
      // The arbiter logs the switch itself ("feed switched"); this thread only notifies.
      ctx.log.debug({ symbol: m.symbol, rung: m.rung, reason: m.reason }, 'feed changed');
      notifier.send('feed_switch', { symbol: m.symbol, rung: m.rung, reason: m.reason });
    });

    /** Everything that can refuse the request happens before the running loop is touched. */
    async function begin(live: LiveStart, resumed: boolean, startedBy: StartedBy): Promise<void> {
      const module = live.strategy_module ?? (live.strategy === 'module' ? cfg.strategyModule : null);
      const strategy = await createStrategy({
        name: live.strategy,
        params: live.strategy_params ?? {},
        ...(module ? { module } : {}),
      }).catch((err) => {
        throw Object.assign(err, { field: err.field ?? (err.code === 'STRATEGY_PARAMS' ? 'strategy_params' : 'strategy') });
      });
      const gained = fenced ? await fenced.hold(live.symbols) : [];
      const next = await managerFor(live.broker);
      if (fenced && gained.length) {
        // A symbol taken over: the previous owner's orders are adopted before this node trades it.
        const report = await fenced
          .ordersToAdopt(gained, storage.orders, next.broker)
          .then((records) => next.adopt(records))
          .catch(async (err) => {
            // Let go of them again, so the retry (the cluster's next apply) adopts them afresh.
            await fenced.hold(live.symbols.filter((s) => !gained.includes(s)));
            throw err;
          });
        ctx.log.info({ symbols: gained, ...report, discrepancies: report.discrepancies.length }, 'cluster: orders of the symbols taken over adopted');
      }
      if (loop) {
        arbiter.send({ type: 'unsubscribe' });
        // The loop replaced may still be deciding a bar: a stop waits for it as for the running one.
        const finishing = loop.idle();
        retiring.add(finishing);
        void finishing.finally(() => retiring.delete(finishing));
      }
      manager = next;
      const exits = exitsFromSnake(live.exits === undefined ? cfg.exits : live.exits);
      loop = new TradingLoop({ strategy, risk, orders: manager, clock: ctx.clock, log: ctx.log, ...(exits ? { exits } : {}) });
      strategyName = strategy.name;
      const sameFeed = resumed || (session.live?.bar_size === live.bar_size && session.running);
      if (!sameFeed) {
        session.lastSeen = {};
        for (const k of Object.keys(handled)) delete handled[k];
      }
      session.running = true;
      session.live = { ...live, strategy_module: module ?? null };
      session.startedBy = startedBy;
      // A resumed session is the one on disk already: no write (and no flush behind the collector's) before serving.
      if (!resumed) await storage.checkpoints.put(SESSION_KEY, session);
      arbiter.send({ type: 'subscribe', symbols: live.symbols, barSize: live.bar_size, after: session.lastSeen, warmup: true });
      ctx.log.info(
        { ...live, strategy_module: module ?? null, running_strategy: strategy.name, started_by: startedBy, resumed },
        `trading loop started (${startedBy === 'config' ? 'settings from the config' : startedBy === 'resumed' ? 'settings resumed from the saved session' : 'settings from POST /live/start'})`,
      );
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
      if (live.strategy_module !== undefined && live.strategy_module !== null && (typeof live.strategy_module !== 'string' || live.strategy_module === '')) {
        throw invalid('strategy_module', 'strategy_module: must be a path to a module');
      }
      return { ...live, symbols: [...new Set(live.symbols.map((s) => s.toUpperCase()))], bar_size: live.bar_size as BarSize };
    }

    function positions(): PositionView[] {
      if (!manager) return [];
      return manager
        .positions()
        .filter((p) => p.qty !== 0)
        .map((p) => {
          // After a restart, before the first new bar, the newest cached close stands in.
          const last = manager!.lastPrice(p.symbol) ?? cachedClose(p.symbol);
          return {
            symbol: p.symbol,
            qty: p.qty,
            avg_price: displayPrice(p.avgPrice),
            last_price: last === null ? null : displayPrice(last),
            market_value: last === null ? null : displayMoney(last * p.qty),
            unrealized_pnl: last === null ? null : displayMoney((last - p.avgPrice) * p.qty),
          };
        });
    }

    function cachedClose(symbol: string): number | null {
      const size = session.live?.bar_size ?? cfg.autostart?.bar_size ?? '1Min';
      return storage.bars.latest(symbol, size)?.close ?? null;
    }

    function status(): TraderStatus {
      const st = loop?.status();
      // P&L and cash come from the order manager and the broker, running or not.
      const pnl = st?.pnl ?? manager?.pnlTodayParts();
      const cash = st?.cash ?? manager?.broker.cash?.();
      const refusals: Record<string, number> = {};
      if (manager) for (const [rule, n] of Object.entries(manager.counters.refused)) if (n) refusals[rule] = n;
      const recent = st?.risk.recentRefusals ?? [];
      return {
        is_running: session.running && loop !== null,
        symbols: session.live?.symbols ?? [],
        bar_size: session.live?.bar_size ?? null,
        // The name the orders carry (a module's own name, not "module").
        strategy: (session.running && strategyName) || session.live?.strategy || null,
        strategy_module: session.live?.strategy_module ?? null,
        strategy_params: session.live?.strategy_params ?? {},
        started_by: session.running ? (session.startedBy ?? null) : null,
        broker: session.live?.broker ?? null,
        last_bar_time: iso(lastBarTime),
        bars_collected: barsCollected,
        signals: st?.counters.signals ?? 0,
        positions: positions(),
        open_orders: (manager?.openOrders() ?? []).map(orderView),
        pnl_today: pnl ? { realized: displayMoney(pnl.realized), unrealized: displayMoney(pnl.unrealized), total: displayMoney(pnl.total) } : { realized: 0, unrealized: 0, total: 0 },
        cash: cash === undefined ? null : displayMoney(cash),
        last_signals: Object.fromEntries(Object.entries(st?.lastSignals ?? {}).map(([sym, s]) => [sym, { bar_start: iso(s.barStart), signal: s.signal, reason: s.reason, action: s.action }])),
        risk: { killed: risk.killed, refusals, last_refusal: recent.length ? recent[recent.length - 1].reason : null },
        paused_symbols: Object.fromEntries((st?.pausedSymbols ?? []).map((p) => [p.symbol, p.reason])),
        strategy_errors: st?.counters.strategyErrors ?? 0,
        exits: exitsToSnake(loop?.exits),
      };
    }

    const rule = resumeRule({ incarnation: ctx.incarnation, saved: session.running ? session.live : null, autostart: cfg.autostart });
    if (rule.replaced) ctx.log.info({ saved: rule.replaced, config: cfg.autostart }, 'the config wins over the saved session settings (positions and orders resume)');
    if (rule.start === 'resumed' && session.live) {
      await begin(session.live, true, ctx.incarnation > 0 ? (session.startedBy ?? 'resumed') : 'resumed');
    } else if (rule.start === 'config' && cfg.autostart) {
      await begin(validate({ ...cfg.autostart }), false, 'config');
    } else {
      // Reconcile the default broker's orders even when not trading.
      manager = await managerFor('paper');
    }

    return {
      handlers: {
        async start(req) {
          const live = validate({ ...req });
          // Symbols that hold a position stay in the loop, so its strategy can still close them.
          // (Not in cluster mode: a symbol's position moves with the symbol to its owner.)
          const held = fenced ? [] : (managers.get(live.broker)?.positions() ?? []).filter((p) => p.qty !== 0 && !live.symbols.includes(p.symbol));
          if (held.length > 0) {
            live.symbols = [...live.symbols, ...held.map((p) => p.symbol)];
            ctx.log.info({ kept: held.map((p) => ({ symbol: p.symbol, qty: p.qty })) }, `kept ${held.map((p) => p.symbol).join(', ')} in the loop: open positions`);
          }
          await begin(live, false, 'request');
          return status();
        },
        async stop() {
          arbiter.send({ type: 'unsubscribe' });
          session.running = false;
          const stopping = loop;
          loop = null;
          await storage.checkpoints.put(SESSION_KEY, session);
          // Bars already handed in finish deciding first, so no order is sent after the cancel below.
          await stopping?.idle();
          await Promise.all([...retiring]);
          // Working orders would fill later under whatever runs next: cancel them (not the kill switch's flatten orders).
          const cancelled = manager ? await manager.cancelWorking() : { cancelled: [], errors: [] };
          ctx.log.info({ event: 'stop', cancelled: cancelled.cancelled, errors: cancelled.errors }, `trading loop stopped; ${cancelled.cancelled.length} working order(s) cancelled`);
          return { ...status(), cancelled_orders: cancelled.cancelled, cancel_errors: cancelled.errors };
        },
        status: () => status(),
        orders: (q) => filterOrders(storage.orders.all(), q ?? {}).map(orderView),
        fills: (q) => fillsOf(storage.orders.all(), q ?? {}),
        positions: () => positions(),
        async kill({ flatten }) {
          if (!manager) manager = await managerFor(session.live?.broker ?? 'paper');
          const report = await manager.kill({ flatten: Boolean(flatten) });
          ctx.log.warn({ event: 'kill', flatten, cancelled: report.cancelled.length, flatten_orders: report.flatten.map((d) => d.action), errors: report.errors }, 'kill switch engaged');
          notifier.send('kill_switch', { flatten: Boolean(flatten), cancelled: report.cancelled.length, flatten_orders: report.flatten.length, errors: report.errors });
          return status();
        },
        async resume() {
          if (manager) await manager.resume();
          else risk.resume();
          return status();
        },
      },
      async stop() {
        for (const m of managers.values()) await m.idle();
        await storage.checkpoints.put(SESSION_KEY, session);
        for (const close of closers) await close();
        await notifier.close();
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
          ...portfolioGauges(manager, positions()),
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
