/**
 * A TWS / IB Gateway simulator that an unmodified @stoqey/ib 1.6.10 client talks to over a real
 * socket (docs/tws-protocol.md). It plays: the handshake, nextValidId and accounts, real-time bars on an
 * accelerated clock, historical bars, errors by symbol, pacing violations, dropped connections,
 * the 1100/1101/1102 notices, a subscription that goes silent, and orders with fills and
 * commissions: MKT, LMT, STP, STP LMT and TRAIL (amount or percent), brackets as parent/child
 * orders (children wait, PreSubmitted, until their parent fills; transmit=0 orders are held
 * unseen until a transmitting order of their group arrives), OCA groups (a fill cancels the rest
 * of the group), IOC (cancelled when the next bar does not fill it), and DAY orders cancelled
 * at the session close as IB cancels them (16:00 New York, 13:00 on the early closes given,
 * 20:00 with outsideRth; weekends and the holidays given are closed). `tradeBar` runs one bar of
 * chosen prices through the order book, for exact trigger tests.
 *
 * Time: simulated time runs 5000/barIntervalMs times faster than real time (`sim.clock`), so bar
 * times still advance 5 s per bar. All of the simulator's time-dependent behaviour (bars, pacing,
 * fills) is on that clock; hand it to the code under test so both agree.
 *
 * Footguns: every server-side subscription belongs to one socket and dies with it; `close()` must
 * be awaited so node can exit.
 */
import net from 'node:net';
import { AcceleratedClock } from './sim-clock.ts';
import type { Clock, ManualClock, TimerHandle } from '../../../src/market/clock.ts';
import { advanceUntil } from '../../helpers/wait.ts';
import { ClientStreamReader, encodeMessage, type Field } from './framing.ts';
import { PricePath, type SimFiveSecondBar } from './price-path.ts';
import {
  commissionReport,
  currentTime,
  errMsg,
  executionData,
  executionDataEnd,
  historicalData,
  historicalDataUpdate,
  managedAccounts,
  nextValidId,
  openOrder,
  openOrderEnd,
  orderStatus,
  realTimeBar,
  type HistoricalBarFields,
  type SimContract,
  type SimExecution,
  type SimOrder,
} from './messages.ts';
import { dayOrderEnd, formatConnectionTime, formatNyDay, formatNyTwoSpace, formatNyWithZone, formatUtcDash, nyMidnight, parseEndDateTime } from './dates.ts';

/** Client → server message ids the simulator handles (docs/tws-protocol.md, Message ids used). */
const OUT = {
  PLACE_ORDER: 3,
  CANCEL_ORDER: 4,
  REQ_OPEN_ORDERS: 5,
  REQ_EXECUTIONS: 7,
  REQ_IDS: 8,
  REQ_AUTO_OPEN_ORDERS: 15,
  REQ_ALL_OPEN_ORDERS: 16,
  REQ_MANAGED_ACCTS: 17,
  REQ_HISTORICAL_DATA: 20,
  CANCEL_HISTORICAL_DATA: 25,
  REQ_CURRENT_TIME: 49,
  REQ_REAL_TIME_BARS: 50,
  CANCEL_REAL_TIME_BARS: 51,
  START_API: 71,
} as const;

const OUT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(OUT).map(([k, v]) => [v, k]));

export const MAX_SERVER_VERSION = 193;
const MIN_SERVER_VERSION = 176;

/** Texts TWS sends with each code (docs/tws-protocol.md, Errors). */
export const ERROR_TEXT: Record<number, string> = {
  103: 'Duplicate order id',
  162: 'Historical Market Data Service error message:No market data permissions for NASDAQ STK',
  200: 'No security definition has been found for the request',
  201: 'Order rejected - reason:',
  202: 'Order Canceled - reason:',
  321: 'Error validating request.',
  326: 'Unable to connect as the client id is already in use. Retry with a unique client id.',
  354: 'Requested market data is not subscribed.Delayed market data is not available.',
  420: "Invalid Real-time Query:No market data permissions for NYSE STK. Requested market data requires additional subscription for API. See link in 'Market Data Connections' dialog for more details.",
  10168: 'Requested market data is not subscribed. Delayed market data is not enabled.',
  1100: 'Connectivity between IB and Trader Workstation has been lost.',
  1101: 'Connectivity between IB and Trader Workstation has been restored - data lost.',
  1102: 'Connectivity between IB and Trader Workstation has been restored - data maintained.',
  2103: 'Market data farm connection is broken:usfarm',
  2104: 'Market data farm connection is OK:usfarm',
  2105: 'HMDS data farm connection is broken:ushmds',
  2106: 'HMDS data farm connection is OK:ushmds',
  2157: 'Sec-def data farm connection is broken:secdefnj',
  2158: 'Sec-def data farm connection is OK:secdefnj',
};

const PACING_TEXT = 'Historical Market Data Service error message:Historical data request pacing violation';

export type HistoricalDateStyle = 'tz-name' | 'utc' | 'two-space';

export interface TwsSimulatorOptions {
  /** Real milliseconds between 5-second bars. Default 5000 (real time). */
  barIntervalMs?: number;
  /** Simulated time at start, UTC epoch ms. Default: now, floored to 5 s. */
  startTime?: number;
  /**
   * A clock the test moves (`sim.advanceUntil`): bars, fills and the adapter's timers (given the same
   * clock) then happen at exact simulated times, whatever the machine's load. Without it the simulator
   * runs on an accelerated clock paced by `barIntervalMs`; `startTime` is then ignored.
   */
  clock?: ManualClock;
  /** Seed of the price path. */
  seed?: number;
  accounts?: string[];
  /** Port to listen on (default 0: any free port). A live-trading port (7496, 4001) for the live-money guard's tests. */
  port?: number;
  /** The first nextValidId handed out. Default 1. */
  firstOrderId?: number;
  /** Highest server version the simulator claims; it answers min(client max, this). 176..193. */
  maxServerVersion?: number;
  /** Symbol → error code for market data requests. Default { NOPERM: 420, NOSUB: 354 }. */
  marketDataErrors?: Record<string, number>;
  /** When a MKT order fills: as soon as it is placed, or at the next 5 s bar. Default immediate. */
  fillMode?: 'immediate' | 'next-bar';
  /** How formatDate=1 bar dates are written. Default `tz-name` (`20250714 09:30:00 US/Eastern`). */
  historicalDateStyle?: HistoricalDateStyle;
  /** Answer requests that break IB's three historical pacing rules with 162. Default false. */
  enforcePacing?: boolean;
  /** Send 2104/2106/2158 after the handshake. Default true. */
  farmStatus?: boolean;
  /** Commission per share and minimum per execution, USD. Defaults 0.005 and 1.00. */
  commissionPerShare?: number;
  /**
   * Simulated ms between a fill's execution and its commission report (real TWS may send it much
   * later). Default 0: right after the execution, in the same burst.
   */
  commissionDelayMs?: number;
  minCommission?: number;
  /** Days the exchange is closed, `YYYY-MM-DD` New York (weekends always are). Default none. */
  holidays?: string[];
  /** Days it closes at 13:00 New York, `YYYY-MM-DD`. Default none. */
  earlyCloses?: string[];
}

export interface PlacedOrder {
  orderId: number;
  clientId: number;
  symbol: string;
  action: string;
  totalQuantity: number;
  orderType: string;
  lmtPrice?: number;
  auxPrice?: number;
  tif: string;
  ocaGroup: string;
  transmit: boolean;
  parentId: number;
  outsideRth: boolean;
  trailStopPrice?: number;
  trailingPercent?: number;
  orderRef: string;
  /** Simulated time it arrived. */
  at: number;
}

export interface RequestRecord {
  type: string;
  clientId: number;
  reqId?: number;
  symbol?: string;
  /** Simulated time it arrived. */
  at: number;
  fields: string[];
}

interface RealTimeSub {
  reqId: number;
  symbol: string;
  lastSent: number;
  /** Silenced individually (the "subscription" scope of silence()). */
  silent: boolean;
}

interface UpdatingHistorical {
  reqId: number;
  symbol: string;
  sizeMs: number;
  formatDate: number;
}

class Session {
  readonly reader = new ClientStreamReader();
  sv = 0;
  clientId = -1;
  started = false;
  /** A half-open connection: the socket stays up but nothing is read or sent any more. */
  frozen = false;
  readonly realTime = new Map<number, RealTimeSub>();
  readonly updating = new Map<number, UpdatingHistorical>();

  constructor(
    readonly socket: net.Socket,
    private readonly onIo: () => void,
  ) {}

  send(fields: Field[]): void {
    if (this.socket.destroyed || this.frozen) return;
    this.onIo();
    this.socket.write(encodeMessage(fields));
  }
}

function parseNum(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  const v = Number(text.replaceAll(',', ''));
  if (!Number.isFinite(v) || v >= 1.7976931348623157e308) return undefined;
  return v;
}

function parseDuration(text: string): number | undefined {
  const m = /^(\d+) ([SDWMY])$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { S: 1_000, D: 86_400_000, W: 7 * 86_400_000, M: 30 * 86_400_000, Y: 365 * 86_400_000 }[m[2] as 'S'];
  return n * unit;
}

const DAY_MS = 86_400_000;

/** Bar length in ms, or 'day'; undefined when TWS would refuse the setting. */
function parseBarSize(text: string): number | 'day' | undefined {
  const m = /^(\d+) (secs?|mins?|hours?|day)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2];
  if (unit.startsWith('sec') && [5, 10, 15, 30].includes(n)) return n * 1000;
  if (unit.startsWith('min') && [1, 2, 3, 5, 10, 15, 20, 30].includes(n)) return n * 60_000;
  if (unit.startsWith('hour') && [1, 2, 3, 4, 8].includes(n)) return n * 3_600_000;
  if (unit === 'day' && n === 1) return 'day';
  return undefined;
}

function conIdOf(symbol: string): number {
  let h = 7;
  for (let i = 0; i < symbol.length; i++) h = (h * 31 + symbol.charCodeAt(i)) % 900_000_000;
  return 100_000_000 + h;
}

const OPEN_STATUSES = new Set(['PreSubmitted', 'Submitted', 'PendingSubmit', 'ApiPending']);
const ORDER_TYPES = new Set(['MKT', 'LMT', 'STP', 'STP LMT', 'TRAIL']);

export interface TradeBar {
  open: number;
  high: number;
  low: number;
  close: number;
}

export class TwsSimulator {
  readonly host = '127.0.0.1';
  port = 0;
  readonly clock: Clock;
  private readonly manualClock: ManualClock | undefined;
  readonly barIntervalMs: number;
  readonly prices: PricePath;
  /** Every PLACE_ORDER received, in arrival order (so a test can assert "never sent twice"). */
  readonly placedOrders: PlacedOrder[] = [];
  /** Every request received after START_API, in arrival order. */
  readonly requestLog: RequestRecord[] = [];
  /** Count of requests per message name (REQ_REAL_TIME_BARS, PLACE_ORDER, ...). */
  readonly requests: Record<string, number> = {};
  /** TCP connections accepted so far. */
  connections = 0;
  /** Messages the simulator could not read: a client sending these is broken. */
  readonly protocolErrors: string[] = [];
  /** Historical requests answered with a pacing violation. */
  pacingViolations = 0;
  /** Bars sent per symbol (real-time), for tests. */
  readonly realTimeBarsSent: Record<string, number> = {};

  private readonly opts: Required<Omit<TwsSimulatorOptions, 'startTime' | 'marketDataErrors' | 'holidays' | 'earlyCloses' | 'clock'>>;
  /** The days that end DAY orders otherwise than at 16:00 on a weekday. */
  private readonly sessionDays: { holidays: ReadonlySet<string>; earlyCloses: ReadonlySet<string> };
  private readonly server: net.Server;
  private readonly sessions = new Set<Session>();
  private readonly marketDataErrors = new Map<string, number>();
  private readonly silenced = new Set<string>();
  private readonly orders = new Map<number, SimOrder>();
  private readonly execs: SimExecution[] = [];
  private readonly historicalLog: { at: number; identity: string; contract: string }[] = [];
  private injectedPacing = 0;
  private nextOrderId: number;
  private permSeq = 1_100_000_000;
  private execSeq = 1;
  private linkLost = false;
  private tickTimer: TimerHandle | undefined;
  /** Messages sent or received, and the count at the last `busy()`: the simulator's side of "in transit". */
  private io = 0;
  private ioSeen = 0;
  private lastTickStart: number;
  private closed = false;

  constructor(opts: TwsSimulatorOptions = {}) {
    const barIntervalMs = opts.barIntervalMs ?? 5000;
    if (!(barIntervalMs > 0)) throw new RangeError(`barIntervalMs must be > 0, got ${barIntervalMs}`);
    const maxSv = opts.maxServerVersion ?? MAX_SERVER_VERSION;
    if (!(maxSv >= MIN_SERVER_VERSION && maxSv <= MAX_SERVER_VERSION)) {
      throw new RangeError(`maxServerVersion must be ${MIN_SERVER_VERSION}..${MAX_SERVER_VERSION}, got ${maxSv}`);
    }
    this.opts = {
      barIntervalMs,
      seed: opts.seed ?? 1,
      accounts: opts.accounts ?? ['DU1234567'],
      firstOrderId: opts.firstOrderId ?? 1,
      maxServerVersion: maxSv,
      fillMode: opts.fillMode ?? 'immediate',
      historicalDateStyle: opts.historicalDateStyle ?? 'tz-name',
      enforcePacing: opts.enforcePacing ?? false,
      farmStatus: opts.farmStatus ?? true,
      commissionPerShare: opts.commissionPerShare ?? 0.005,
      commissionDelayMs: opts.commissionDelayMs ?? 0,
      minCommission: opts.minCommission ?? 1,
      port: opts.port ?? 0,
    };
    this.sessionDays = { holidays: new Set(opts.holidays ?? []), earlyCloses: new Set(opts.earlyCloses ?? []) };
    this.barIntervalMs = barIntervalMs;
    const start = opts.clock?.now() ?? opts.startTime ?? Math.floor(Date.now() / 5000) * 5000;
    this.manualClock = opts.clock;
    this.clock = opts.clock ?? new AcceleratedClock(start, 5000 / barIntervalMs);
    this.prices = new PricePath(this.opts.seed);
    this.nextOrderId = this.opts.firstOrderId;
    this.lastTickStart = Math.floor(start / 5000) * 5000 - 5000;
    for (const [symbol, code] of Object.entries(opts.marketDataErrors ?? { NOPERM: 420, NOSUB: 354 })) {
      this.marketDataErrors.set(symbol, code);
    }
    this.server = net.createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
    this.scheduleTick();
  }

  // ---- test controls -------------------------------------------------------------------------

  /** True when the simulator sent or received anything since the last call (a message in transit). */
  busy(): boolean {
    const moved = this.io !== this.ioSeen;
    this.ioSeen = this.io;
    return moved;
  }

  /**
   * Moves the manual clock (the `clock` option) forward in `stepMs` steps until `cond` holds, each
   * step once a few event-loop turns passed without a message to or from the simulator, so that a
   * step's bars and replies have arrived before time moves on. Fails after `maxMs` of simulated time.
   */
  advanceUntil(cond: () => boolean, what: string, opts: { stepMs?: number; maxMs?: number } = {}): Promise<void> {
    const clock = this.manualClock;
    if (!clock) throw new Error('advanceUntil needs the simulator started with a ManualClock (the clock option)');
    return advanceUntil(clock, cond, what, { busy: () => this.busy(), stepMs: opts.stepMs ?? 1000, maxMs: opts.maxMs ?? 600_000 });
  }

  /** Moves the manual clock as `advanceUntil` does until `work` settles; resolves or rejects as it does. */
  async run<T>(work: Promise<T>, opts: { stepMs?: number; maxMs?: number } = {}): Promise<T> {
    let done = false;
    const settled = work.finally(() => {
      done = true;
    });
    // The rejection, if any, is re-thrown by `await settled` below.
    settled.catch(() => {});
    await this.advanceUntil(() => done, 'the work to settle', opts);
    return settled;
  }

  /** Moves the manual clock forward by `ms` in steps, as `advanceUntil` does. */
  advance(ms: number, opts: { stepMs?: number } = {}): Promise<void> {
    const until = this.clock.now() + ms;
    return this.advanceUntil(() => this.clock.now() >= until, `${ms} simulated ms`, { ...opts, maxMs: ms + 1 });
  }

  /** Makes market data requests for `symbol` fail with `code` (420, 354, 10168, 200, 162); null clears. */
  setMarketDataError(symbol: string, code: number | null): void {
    if (code === null) this.marketDataErrors.delete(symbol);
    else this.marketDataErrors.set(symbol, code);
  }

  clearMarketDataError(symbol: string): void {
    this.marketDataErrors.delete(symbol);
  }

  /** Closes every client socket at once; their server-side subscriptions stop. */
  dropClients(): void {
    for (const s of [...this.sessions]) {
      s.realTime.clear();
      s.updating.clear();
      this.sessions.delete(s);
      s.socket.destroy();
    }
  }

  /**
   * Every current socket goes quiet while staying open, like a half-open TCP connection or a hung
   * TWS: requests are ignored and nothing is sent. New connections work normally.
   */
  freezeClients(): void {
    for (const s of this.sessions) s.frozen = true;
  }

  /**
   * Sends a connectivity notice (id -1) to every client. 1100: the link to IB is lost and no data
   * flows; 1101: restored with data lost (server-side subscriptions are dropped); 1102: restored
   * with data kept. Other codes (2103, 2105, ...) are only sent.
   */
  sendNotice(code: number, text = ERROR_TEXT[code] ?? `Notice ${code}`): void {
    if (code === 1100) this.linkLost = true;
    if (code === 1101 || code === 1102) this.linkLost = false;
    if (code === 1101) {
      for (const s of this.sessions) {
        s.realTime.clear();
        s.updating.clear();
      }
    }
    for (const s of this.sessions) if (s.started) s.send(errMsg(-1, code, text));
  }

  /**
   * Stops sending bars for `symbol` while the socket stays healthy. Scope `symbol` (default)
   * covers new subscriptions too, until unsilence; scope `subscription` only the ones open now,
   * so a resubscription brings the bars back.
   */
  silence(symbol: string, scope: 'symbol' | 'subscription' = 'symbol'): void {
    if (scope === 'symbol') this.silenced.add(symbol);
    for (const s of this.sessions) for (const sub of s.realTime.values()) if (sub.symbol === symbol) sub.silent = true;
  }

  unsilence(symbol: string): void {
    this.silenced.delete(symbol);
    for (const s of this.sessions) for (const sub of s.realTime.values()) if (sub.symbol === symbol) sub.silent = false;
  }

  /** The next `n` historical requests get a 162 pacing violation. */
  injectPacingViolations(n = 1): void {
    this.injectedPacing += n;
  }

  /** Live sockets (whether or not they have sent START_API). */
  activeConnections(): number {
    return this.sessions.size;
  }

  /** Open real-time subscriptions, for one symbol or all. */
  realTimeSubscriptions(symbol?: string): number {
    let n = 0;
    for (const s of this.sessions) for (const sub of s.realTime.values()) if (!symbol || sub.symbol === symbol) n++;
    return n;
  }

  /** Requests of one type (e.g. REQ_REAL_TIME_BARS), optionally for one symbol. */
  countRequests(type: string, symbol?: string): number {
    return this.requestLog.filter((r) => r.type === type && (!symbol || r.symbol === symbol)).length;
  }

  fiveSecondBar(symbol: string, start: number): SimFiveSecondBar {
    return this.prices.fiveSecondBar(symbol, start);
  }

  orderById(orderId: number): SimOrder | undefined {
    const o = this.orders.get(orderId);
    return o ? { ...o } : undefined;
  }

  executions(): SimExecution[] {
    return this.execs.map((e) => ({ ...e }));
  }

  /** Fills an open order now, at `price` or the current price. */
  fillOrder(orderId: number, price?: number): void {
    const o = this.orders.get(orderId);
    if (!o || !OPEN_STATUSES.has(o.status) || o.held) throw new Error(`order ${orderId} is not open`);
    this.fill(o, price ?? this.currentPrice(o.contract.symbol));
  }

  /** Runs one bar with these prices through the open orders of `symbol` (triggers, fills, trails). */
  tradeBar(symbol: string, bar: TradeBar): void {
    this.expireDayOrders(this.clock.now());
    for (const o of [...this.orders.values()]) if (o.contract.symbol === symbol) this.matchOrder(o, bar);
  }

  currentPrice(symbol: string): number {
    return this.prices.priceAt(symbol, this.clock.now());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.tickTimer?.cancel();
    for (const s of this.sessions) s.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- connection handling -------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    this.connections++;
    this.io++;
    const session = new Session(socket, () => void this.io++);
    this.sessions.add(session);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.io++;
      let parsed;
      try {
        parsed = session.reader.push(chunk);
      } catch (err) {
        this.protocolErrors.push((err as Error).message);
        socket.destroy();
        return;
      }
      if (session.frozen) return;
      if (parsed.hello) this.onHello(session, parsed.hello.minVersion, parsed.hello.maxVersion);
      for (const m of parsed.messages) {
        try {
          this.onMessage(session, m);
        } catch (err) {
          this.protocolErrors.push(`${(err as Error).message} in ${JSON.stringify(m)}`);
        }
      }
    });
    socket.on('error', () => {
      // A client that resets its socket is normal here (dropped connections, tests ending).
    });
    socket.on('close', () => {
      this.sessions.delete(session);
    });
  }

  private onHello(s: Session, min: number, max: number): void {
    const sv = Math.min(max, this.opts.maxServerVersion);
    if (sv < min || sv < MIN_SERVER_VERSION) {
      this.protocolErrors.push(`client offers v${min}..${max}; simulator needs ${MIN_SERVER_VERSION}..${this.opts.maxServerVersion}`);
      s.socket.destroy();
      return;
    }
    s.sv = sv;
    // One framed message with two fields (docs/tws-protocol.md, Connecting; Pitfalls 2).
    s.send([sv, formatConnectionTime(this.clock.now())]);
  }

  private onMessage(s: Session, f: string[]): void {
    const id = Number(f[0]);
    if (id === OUT.START_API) {
      this.onStartApi(s, Number(f[2]));
      return;
    }
    if (!s.started) {
      this.protocolErrors.push(`message ${f[0]} before START_API`);
      return;
    }
    const type = OUT_NAMES[id] ?? `UNKNOWN_${f[0]}`;
    this.requests[type] = (this.requests[type] ?? 0) + 1;
    switch (id) {
      case OUT.REQ_REAL_TIME_BARS:
        return this.onRealTimeBars(s, f);
      case OUT.CANCEL_REAL_TIME_BARS:
        this.log(s, type, f, Number(f[2]));
        s.realTime.delete(Number(f[2]));
        return;
      case OUT.REQ_HISTORICAL_DATA:
        return this.onHistorical(s, f);
      case OUT.CANCEL_HISTORICAL_DATA:
        this.log(s, type, f, Number(f[2]));
        s.updating.delete(Number(f[2]));
        return;
      case OUT.PLACE_ORDER:
        return this.onPlaceOrder(s, f);
      case OUT.CANCEL_ORDER:
        return this.onCancelOrder(s, f);
      case OUT.REQ_OPEN_ORDERS:
        this.log(s, type, f);
        return this.sendOpenOrders(s, (o) => o.clientId === s.clientId);
      case OUT.REQ_ALL_OPEN_ORDERS:
        this.log(s, type, f);
        return this.sendOpenOrders(s, () => true);
      case OUT.REQ_AUTO_OPEN_ORDERS:
        this.log(s, type, f);
        return;
      case OUT.REQ_EXECUTIONS:
        return this.onExecutions(s, f);
      case OUT.REQ_IDS:
        this.log(s, type, f);
        s.send(nextValidId(this.nextOrderId));
        return;
      case OUT.REQ_MANAGED_ACCTS:
        this.log(s, type, f);
        s.send(managedAccounts(this.opts.accounts));
        return;
      case OUT.REQ_CURRENT_TIME:
        this.log(s, type, f);
        s.send(currentTime(Math.floor(this.clock.now() / 1000)));
        return;
      default:
        this.log(s, type, f);
    }
  }

  private log(s: Session, type: string, fields: string[], reqId?: number, symbol?: string): void {
    this.requestLog.push({ type, clientId: s.clientId, reqId, symbol, at: this.clock.now(), fields });
  }

  private onStartApi(s: Session, clientId: number): void {
    for (const other of this.sessions) {
      if (other !== s && other.started && other.clientId === clientId && !other.socket.destroyed) {
        s.send(errMsg(-1, 326, ERROR_TEXT[326]));
        s.socket.end();
        return;
      }
    }
    s.clientId = clientId;
    s.started = true;
    s.send(managedAccounts(this.opts.accounts));
    s.send(nextValidId(this.nextOrderId));
    if (this.opts.farmStatus) {
      s.send(errMsg(-1, 2104, ERROR_TEXT[2104]));
      s.send(errMsg(-1, 2106, ERROR_TEXT[2106]));
      s.send(errMsg(-1, 2158, ERROR_TEXT[2158]));
    }
    if (this.linkLost) s.send(errMsg(-1, 1100, ERROR_TEXT[1100]));
  }

  // ---- market data ---------------------------------------------------------------------------

  private marketDataError(symbol: string): { code: number; text: string } | undefined {
    const code = this.marketDataErrors.get(symbol);
    if (code === undefined) return undefined;
    return { code, text: ERROR_TEXT[code] ?? `Error ${code}` };
  }

  private onRealTimeBars(s: Session, f: string[]): void {
    // [50, 3, reqId, conId, symbol, secType, lastTrade, strike, right, multiplier, exchange,
    //  primaryExch, currency, localSymbol, tradingClass, barSize, whatToShow, useRTH, options]
    const reqId = Number(f[2]);
    const symbol = f[4];
    this.log(s, 'REQ_REAL_TIME_BARS', f, reqId, symbol);
    const err = this.marketDataError(symbol);
    if (err) {
      s.send(errMsg(reqId, err.code, err.text));
      return;
    }
    if (f[5] !== 'STK' || f[16] !== 'TRADES') {
      s.send(errMsg(reqId, 321, `${ERROR_TEXT[321]} The simulator serves STK TRADES only.`));
      return;
    }
    const sub: RealTimeSub = { reqId, symbol, lastSent: Number.NEGATIVE_INFINITY, silent: this.silenced.has(symbol) };
    s.realTime.set(reqId, sub);
    // TWS sends the last completed 5 s bar almost at once.
    this.sendRealTimeBar(s, sub, this.lastTickStart);
  }

  private sendRealTimeBar(s: Session, sub: RealTimeSub, start: number): void {
    if (this.linkLost || sub.silent || this.silenced.has(sub.symbol) || start <= sub.lastSent) return;
    sub.lastSent = start;
    const b = this.prices.fiveSecondBar(sub.symbol, start);
    this.realTimeBarsSent[sub.symbol] = (this.realTimeBarsSent[sub.symbol] ?? 0) + 1;
    s.send(realTimeBar(sub.reqId, { ...b, time: start / 1000 }));
  }

  private scheduleTick(): void {
    if (this.closed) return;
    const next = this.lastTickStart + 10_000; // the boundary that completes the bar after lastTickStart
    this.tickTimer = this.clock.setTimeout(() => this.tick(), next - this.clock.now());
  }

  private tick(): void {
    const completedUpTo = Math.floor(this.clock.now() / 5000) * 5000 - 5000;
    // After a stalled event loop, catch up bar by bar (at most a minute's worth).
    let start = Math.max(this.lastTickStart + 5000, completedUpTo - 55_000);
    for (; start <= completedUpTo; start += 5000) {
      this.lastTickStart = start;
      if (this.linkLost) continue;
      for (const s of this.sessions) {
        for (const sub of s.realTime.values()) this.sendRealTimeBar(s, sub, start);
        for (const u of s.updating.values()) this.sendHistoricalUpdate(s, u);
      }
      this.matchOrders(start);
    }
    this.scheduleTick();
  }

  private onHistorical(s: Session, f: string[]): void {
    // [20, reqId, conId, symbol, secType, lastTrade, strike, right, multiplier, exchange,
    //  primaryExch, currency, localSymbol, tradingClass, includeExpired, endDateTime,
    //  barSizeSetting, durationStr, useRTH, whatToShow, formatDate, keepUpToDate, chartOptions]
    const reqId = Number(f[1]);
    const symbol = f[3];
    this.log(s, 'REQ_HISTORICAL_DATA', f, reqId, symbol);
    const now = this.clock.now();
    const [endText, barSizeText, durationText, , whatToShow, formatDateText, keepText] = f.slice(15, 22);
    const contract = `${symbol}|${f[4]}|${f[9]}|${whatToShow}`;
    const identity = f.slice(2, 22).join('|');
    if (this.pacingViolated(now, identity, contract)) {
      this.pacingViolations++;
      s.send(errMsg(reqId, 162, PACING_TEXT));
      return;
    }
    this.historicalLog.push({ at: now, identity, contract });
    const err = this.marketDataError(symbol);
    if (err) {
      s.send(errMsg(reqId, err.code, err.text));
      return;
    }
    const size = parseBarSize(barSizeText);
    const duration = parseDuration(durationText);
    const end = parseEndDateTime(endText, now);
    const keepUpToDate = keepText === '1';
    if (size === undefined || duration === undefined || end === undefined || (keepUpToDate && endText !== '')) {
      s.send(errMsg(reqId, 321, `Error validating request.-'bP' : cause - bar size "${barSizeText}", duration "${durationText}" or end "${endText}" is invalid`));
      return;
    }
    const formatDate = Number(formatDateText) === 2 ? 2 : 1;
    const bars = this.historicalBars(symbol, size, Math.min(end, now), duration, formatDate, now);
    if (bars.length === 0) {
      s.send(errMsg(reqId, 162, `Historical Market Data Service error message:HMDS query returned no data: ${symbol}@SMART Trades`));
      return;
    }
    s.send(historicalData(reqId, formatNyWithZone(end - duration), formatNyWithZone(end), bars));
    if (keepUpToDate && size !== 'day') s.updating.set(reqId, { reqId, symbol, sizeMs: size, formatDate });
  }

  private pacingViolated(now: number, identity: string, contract: string): boolean {
    if (this.injectedPacing > 0) {
      this.injectedPacing--;
      return true;
    }
    if (!this.opts.enforcePacing) return false;
    const log = this.historicalLog;
    if (log.some((r) => r.identity === identity && now - r.at < 15_000)) return true;
    if (log.filter((r) => r.contract === contract && now - r.at < 2_000).length >= 5) return true;
    if (log.filter((r) => now - r.at < 600_000).length >= 60) return true;
    return false;
  }

  private formatBarDate(start: number, formatDate: number): string {
    if (formatDate === 2) return String(Math.floor(start / 1000));
    switch (this.opts.historicalDateStyle) {
      case 'utc':
        return formatUtcDash(start);
      case 'two-space':
        return formatNyTwoSpace(start);
      default:
        return formatNyWithZone(start);
    }
  }

  private historicalBars(symbol: string, size: number | 'day', end: number, duration: number, formatDate: number, now: number): HistoricalBarFields[] {
    const out: HistoricalBarFields[] = [];
    const dataUntil = Math.floor(now / 5000) * 5000;
    if (size === 'day') {
      // "3 D" ending mid-day is the three days up to and including the end's day.
      let day = nyMidnight(end - duration);
      if (day < end - duration) day = nyMidnight(day + DAY_MS + 3_600_000 * 3);
      while (day < end && out.length < 5000) {
        const next = nyMidnight(day + DAY_MS + 3_600_000 * 3);
        const b = this.prices.bar(symbol, day, Math.min(next, dataUntil));
        if (Math.min(next, dataUntil) > day) out.push({ ...b, date: formatNyDay(day) });
        day = next;
      }
      return out;
    }
    const first = Math.ceil((end - duration) / size) * size;
    for (let start = first; start < end && out.length < 10_000; start += size) {
      const barEnd = Math.min(start + size, dataUntil);
      if (barEnd <= start) break;
      const b = this.prices.bar(symbol, start, barEnd);
      out.push({ ...b, date: this.formatBarDate(start, formatDate) });
    }
    return out;
  }

  private sendHistoricalUpdate(s: Session, u: UpdatingHistorical): void {
    const dataUntil = this.lastTickStart + 5000;
    const start = Math.floor((dataUntil - 1) / u.sizeMs) * u.sizeMs;
    const b = this.prices.bar(u.symbol, start, dataUntil);
    s.send(historicalDataUpdate(u.reqId, { ...b, date: this.formatBarDate(start, u.formatDate) }));
  }

  // ---- orders --------------------------------------------------------------------------------

  private contractFor(symbol: string, exchange: string, currency: string, secType: string): SimContract {
    return { conId: conIdOf(symbol), symbol, secType: secType || 'STK', exchange: exchange || 'SMART', primaryExch: '', currency: currency || 'USD' };
  }

  private onPlaceOrder(s: Session, f: string[]): void {
    // Prefix at sv >= 145 (docs/tws-protocol.md, Server version).
    const orderId = Number(f[1]);
    const symbol = f[3];
    const action = f[16];
    const totalQuantity = parseNum(f[17]) ?? 0;
    const orderType = f[18];
    const lmtPrice = parseNum(f[19]);
    const auxPrice = parseNum(f[20]);
    const orderRef = f[26] ?? '';
    const tif = f[21] || 'DAY';
    const ocaGroup = f[22] ?? '';
    const transmit = f[27] !== '0';
    const parentId = Number(f[28]) || 0;
    const outsideRth = f[33] === '1';
    // faProfile is sent below sv 177 (docs/tws-protocol.md, Stops, trails and brackets), shifting the tail by one.
    const tail = s.sv < 177 ? 1 : 0;
    const trailStopPrice = parseNum(f[68 + tail]);
    const trailingPercent = parseNum(f[69 + tail]);
    const now = this.clock.now();
    this.log(s, 'PLACE_ORDER', f, orderId, symbol);
    this.placedOrders.push({
      orderId,
      clientId: s.clientId,
      symbol,
      action,
      totalQuantity,
      orderType,
      lmtPrice,
      auxPrice,
      tif,
      ocaGroup,
      transmit,
      parentId,
      outsideRth,
      trailStopPrice,
      trailingPercent,
      orderRef,
      at: now,
    });

    const existing = this.orders.get(orderId);
    if (existing && !OPEN_STATUSES.has(existing.status)) {
      s.send(errMsg(orderId, 103, ERROR_TEXT[103]));
      return;
    }
    if (existing && existing.clientId !== s.clientId) {
      s.send(errMsg(orderId, 103, ERROR_TEXT[103]));
      return;
    }
    const reject = (reason: string) => s.send(errMsg(orderId, 201, `${ERROR_TEXT[201]}${reason}`));
    if (this.marketDataErrors.get(symbol) === 200) {
      s.send(errMsg(orderId, 200, ERROR_TEXT[200]));
      return;
    }
    if (action !== 'BUY' && action !== 'SELL') return reject(`invalid action "${action}"`);
    if (!(totalQuantity > 0)) return reject('quantity must be positive');
    if (!ORDER_TYPES.has(orderType)) return reject(`the simulator does not support order type ${orderType}`);
    if ((orderType === 'LMT' || orderType === 'STP LMT') && !(lmtPrice !== undefined && lmtPrice > 0)) return reject(`a ${orderType} order needs a limit price`);
    if ((orderType === 'STP' || orderType === 'STP LMT') && !(auxPrice !== undefined && auxPrice > 0)) return reject(`a ${orderType} order needs a stop price (auxPrice)`);
    if (orderType === 'TRAIL' && !((auxPrice ?? 0) > 0) === !((trailingPercent ?? 0) > 0)) return reject('a TRAIL order needs a trailing amount (auxPrice) or a trailing percent');
    const parent = parentId ? this.orders.get(parentId) : undefined;
    if (parentId && (!parent || parent.clientId !== s.clientId)) return reject(`parent order ${parentId} not found`);

    if (orderId >= this.nextOrderId) this.nextOrderId = orderId + 1;
    const order: SimOrder = existing
      ? { ...existing, totalQuantity, orderType, lmtPrice, auxPrice, remaining: totalQuantity - existing.filled }
      : {
          orderId,
          clientId: s.clientId,
          permId: this.permSeq++,
          account: f[23] || this.opts.accounts[0],
          contract: this.contractFor(symbol, f[9], f[11], f[4]),
          action,
          totalQuantity,
          orderType,
          lmtPrice,
          auxPrice,
          tif,
          orderRef,
          parentId,
          outsideRth,
          ocaGroup,
          trailingPercent,
          trailStopPrice,
          status: 'Submitted',
          filled: 0,
          remaining: totalQuantity,
          avgFillPrice: 0,
          lastFillPrice: 0,
        };
    if (!existing && tif === 'DAY') order.dayEnd = dayOrderEnd(now, outsideRth, this.sessionDays);
    if (order.orderType === 'TRAIL' && order.trailStopPrice === undefined) {
      order.extreme = this.currentPrice(symbol);
      order.trailStopPrice = this.trailLevel(order, order.extreme);
    }
    // A child waits for its parent to fill; an untransmitted order waits, unseen, for its group.
    if (parent && parent.status !== 'Filled') order.status = 'PreSubmitted';
    order.held = !transmit;
    this.orders.set(orderId, order);
    if (order.held) return;
    this.release(order);
  }

  /** Announces an order and the held orders of its group (parent and siblings), and fills a MKT one now. */
  private release(order: SimOrder): void {
    const root = order.parentId || order.orderId;
    const group = [...this.orders.values()].filter((o) => o.held && (o.orderId === root || o.parentId === root));
    for (const o of [...group, order]) {
      o.held = false;
      this.toOwner(o, (x, sv) => [openOrder(sv, x), orderStatus(x)]);
    }
    for (const o of [...group, order]) {
      if (o.status === 'Submitted' && o.orderType === 'MKT' && this.opts.fillMode === 'immediate' && !this.linkLost) this.fill(o, this.currentPrice(o.contract.symbol));
    }
  }

  private trailLevel(o: SimOrder, extreme: number): number {
    const d = o.trailingPercent !== undefined ? (extreme * o.trailingPercent) / 100 : (o.auxPrice ?? 0);
    return Math.round((o.action === 'SELL' ? extreme - d : extreme + d) * 100) / 100;
  }

  private onCancelOrder(s: Session, f: string[]): void {
    const orderId = s.sv >= 192 ? Number(f[1]) : Number(f[2]);
    this.log(s, 'CANCEL_ORDER', f, orderId);
    const o = this.orders.get(orderId);
    if (!o || o.clientId !== s.clientId) {
      s.send(errMsg(orderId, 10147, `OrderId ${orderId} that needs to be cancelled is not found.`));
      return;
    }
    if (!OPEN_STATUSES.has(o.status)) {
      s.send(errMsg(orderId, 10148, `OrderId ${orderId} that needs to be cancelled cannot be cancelled, state: ${o.status}.`));
      return;
    }
    this.cancel(o, '');
  }

  private sendOpenOrders(s: Session, which: (o: SimOrder) => boolean): void {
    for (const o of this.orders.values()) {
      if (OPEN_STATUSES.has(o.status) && !o.held && which(o)) {
        s.send(openOrder(s.sv, o));
        s.send(orderStatus(o));
      }
    }
    s.send(openOrderEnd());
  }

  private onExecutions(s: Session, f: string[]): void {
    // [7, 3, reqId, clientId, acctCode, time, symbol, secType, exchange, side]
    const reqId = Number(f[2]);
    this.log(s, 'REQ_EXECUTIONS', f, reqId, f[6] || undefined);
    const filterClient = f[3] === '' || f[3] === '0' ? s.clientId : Number(f[3]);
    const since = f[5] ? parseEndDateTime(f[5], 0) : undefined;
    for (const e of this.execs) {
      if (e.clientId !== filterClient) continue;
      if (f[4] && e.account !== f[4]) continue;
      if (f[6] && e.contract.symbol !== f[6]) continue;
      if (f[9] && !(f[9] === e.side || (f[9] === 'BUY' && e.side === 'BOT') || (f[9] === 'SELL' && e.side === 'SLD'))) continue;
      if (since !== undefined && e.at < since) continue;
      s.send(executionData(s.sv, reqId, e));
      s.send(commissionReport(e));
    }
    s.send(executionDataEnd(reqId));
  }

  /** Sends messages about an order to the session of the client that placed it, if connected. */
  private toOwner(o: SimOrder, build: (o: SimOrder, sv: number) => Field[][]): void {
    for (const s of this.sessions) {
      if (s.started && s.clientId === o.clientId && !s.socket.destroyed) {
        for (const m of build(o, s.sv)) s.send(m);
      }
    }
  }

  /** Runs the 5 s bar starting at `start` through every working order. */
  private matchOrders(start: number): void {
    this.expireDayOrders(start);
    for (const o of [...this.orders.values()]) {
      if (!OPEN_STATUSES.has(o.status) || o.held) continue;
      this.matchOrder(o, this.prices.fiveSecondBar(o.contract.symbol, start));
    }
  }

  /**
   * One bar against one working order. MKT fills at the close; LMT when the bar reaches it (at the
   * open when better); STP when the bar trades through it, at the open on a gap, else at the stop;
   * STP LMT triggers like STP and then works as LMT; TRAIL is a STP whose level follows the bar's
   * extreme after the bar is checked. An IOC order the bar does not fill is cancelled.
   */
  private matchOrder(o: SimOrder, b: TradeBar): void {
    if (o.status !== 'Submitted' || o.held) return;
    const buy = o.action === 'BUY';
    const limitPx = (limit: number) => (buy ? (b.low <= limit ? Math.min(limit, b.open) : undefined) : b.high >= limit ? Math.max(limit, b.open) : undefined);
    const stopPx = (stop: number) => (buy ? (b.open >= stop ? b.open : b.high >= stop ? stop : undefined) : b.open <= stop ? b.open : b.low <= stop ? stop : undefined);
    let price: number | undefined;
    switch (o.orderType) {
      case 'MKT':
        price = b.close;
        break;
      case 'LMT':
        price = limitPx(o.lmtPrice!);
        break;
      case 'STP':
        price = stopPx(o.auxPrice!);
        break;
      case 'STP LMT':
        if (!o.triggered && stopPx(o.auxPrice!) !== undefined) o.triggered = true;
        if (o.triggered) price = limitPx(o.lmtPrice!);
        break;
      case 'TRAIL': {
        price = stopPx(o.trailStopPrice!);
        if (price === undefined) {
          o.extreme = buy ? Math.min(o.extreme ?? Infinity, b.low) : Math.max(o.extreme ?? -Infinity, b.high);
          const level = this.trailLevel(o, o.extreme);
          o.trailStopPrice = buy ? Math.min(o.trailStopPrice!, level) : Math.max(o.trailStopPrice!, level);
        }
        break;
      }
    }
    if (price !== undefined) this.fill(o, price);
    else if (o.tif === 'IOC') this.cancel(o, 'IOC order not filled');
  }

  /** Cancels the DAY orders whose session has closed by `now`, as IB does at the close. */
  private expireDayOrders(now: number): void {
    for (const o of [...this.orders.values()]) {
      if (o.dayEnd !== undefined && o.dayEnd <= now && OPEN_STATUSES.has(o.status)) this.cancel(o, `DAY order expired at the session close ${new Date(o.dayEnd).toISOString()}`);
    }
  }

  /** Cancels a working order (and a parent's waiting children), telling its owner as TWS does. */
  private cancel(o: SimOrder, reason: string): void {
    if (!OPEN_STATUSES.has(o.status)) return;
    o.status = 'Cancelled';
    this.toOwner(o, (x) => [orderStatus(x), errMsg(x.orderId, 202, `${ERROR_TEXT[202]}${reason}`)]);
    for (const c of this.orders.values()) if (c.parentId === o.orderId) this.cancel(c, `parent order ${o.orderId} was cancelled`);
  }

  private fill(o: SimOrder, price: number): void {
    const qty = o.remaining;
    const now = this.clock.now();
    const prevValue = o.avgFillPrice * o.filled;
    o.filled += qty;
    o.remaining = 0;
    o.avgFillPrice = Math.round(((prevValue + price * qty) / o.filled) * 1e6) / 1e6;
    o.lastFillPrice = price;
    o.status = 'Filled';
    const exec: SimExecution = {
      execId: `0000e0d5.${(this.execSeq++).toString(16).padStart(8, '0')}.01.01`,
      orderId: o.orderId,
      clientId: o.clientId,
      permId: o.permId,
      account: o.account,
      contract: o.contract,
      time: formatNyWithZone(now),
      side: o.action === 'BUY' ? 'BOT' : 'SLD',
      shares: qty,
      price,
      cumQty: o.filled,
      avgPrice: o.avgFillPrice,
      orderRef: o.orderRef,
      commission: Math.round(Math.max(this.opts.minCommission, qty * this.opts.commissionPerShare) * 100) / 100,
      currency: o.contract.currency,
      at: now,
    };
    this.execs.push(exec);
    const delay = this.opts.commissionDelayMs;
    this.toOwner(o, (order, sv) => [executionData(sv, -1, exec), openOrder(sv, order), orderStatus(order), ...(delay > 0 ? [] : [commissionReport(exec)])]);
    if (delay > 0) {
      this.clock.setTimeout(() => {
        if (!this.closed) this.toOwner(o, () => [commissionReport(exec)]);
      }, delay);
    }
    // The parent filled: its children start working.
    for (const c of this.orders.values()) {
      if (c.parentId === o.orderId && c.status === 'PreSubmitted' && !c.held) {
        c.status = 'Submitted';
        this.toOwner(c, (x) => [orderStatus(x)]);
      }
    }
    // One-cancels-other.
    if (o.ocaGroup) for (const c of this.orders.values()) if (c !== o && c.ocaGroup === o.ocaGroup && c.clientId === o.clientId) this.cancel(c, 'OCA group');
  }
}

export async function startTwsSimulator(opts: TwsSimulatorOptions = {}): Promise<TwsSimulator> {
  const sim = new TwsSimulator(opts);
  await sim.listen();
  return sim;
}
