// The barkeep dashboard: four views over the HTTP API, kept current by /events (no polling).
import { HttpError, askToken, get, loadInfo, post, setToken, subscribe, token } from './api.js';
import { CandleChart, equityChart } from './charts.js';

const NY = 'America/New_York';
const fmtNy = new Intl.DateTimeFormat('en-US', { timeZone: NY, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

const state = {
  info: null,
  live: null,
  collector: null,
  actors: [],
  health: null,
  /** client_order_id -> order */
  orders: new Map(),
  /** newest first */
  fills: [],
  /** symbol -> [{rung, since, reason}] oldest first */
  ladder: new Map(),
  /** symbol -> CandleChart */
  charts: new Map(),
  backtests: null,
  selectedBacktest: null,
};

// ---- small DOM helpers --------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function ny(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : fmtNy.format(d);
}

function num(v, digits = 2) {
  return typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—';
}

function usd(v) {
  return typeof v === 'number' ? money.format(v) : '—';
}

function duration(s) {
  if (typeof s !== 'number') return '—';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v, testid]) => [el('dt', {}, k), el('dd', testid ? { 'data-testid': testid } : {}, v)]));
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

let noticeTimer;
function notice(text, kind = '') {
  const n = $('notice');
  n.textContent = text;
  n.className = kind;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

/** Runs `fn` at most once per `ms`, after the last call (for refetches driven by events). */
function debounce(fn, ms) {
  let t = null;
  return () => {
    if (t) return;
    t = setTimeout(() => {
      t = null;
      fn();
    }, ms);
  };
}

// ---- data ---------------------------------------------------------------------------------

async function safe(p, fallback = null) {
  try {
    return await p;
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) notice('The server refused the token: set it with the Token button.', 'bad');
    return fallback;
  }
}

/** Switches kept per symbol in the page (the server keeps its own bounded history). */
const LADDER_KEEP = 200;

/** The ladder's history from GET /feed/switches: the switches made before this page was opened. */
function seedLadder(r) {
  for (const [symbol, list] of Object.entries(r.switches ?? {})) {
    const seen = new Set(list.map((s) => s.id));
    // Switches that reached this page over /events and are not in the answer stay, after it.
    const extra = (state.ladder.get(symbol) ?? []).filter((h) => h.id && !seen.has(h.id));
    state.ladder.set(symbol, [...list.map((s) => ({ id: s.id, rung: s.rung, since: s.at, reason: s.reason })), ...extra].slice(-LADDER_KEEP));
  }
}

/** `switches`: a pending GET /feed/switches to apply first (a full load); refreshes pass none. */
async function loadLive(switches) {
  const [live, sw] = await Promise.all([safe(get('/live/status')), switches ?? null]);
  if (sw) seedLadder(sw);
  if (!live) return;
  state.live = live;
  for (const [symbol, f] of Object.entries(live.feed ?? {})) {
    const hist = state.ladder.get(symbol) ?? [];
    const last = hist[hist.length - 1];
    if (!last || last.rung !== f.rung) hist.push({ rung: f.rung, since: f.since ?? new Date().toISOString(), reason: f.reason });
    state.ladder.set(symbol, hist);
  }
  renderLive();
}

async function loadCollector() {
  const c = await safe(get('/data-collector/status'));
  if (c) state.collector = c;
  renderCollector();
}

async function loadActors() {
  const [a, h] = await Promise.all([safe(get('/actors')), loadHealth()]);
  if (a) state.actors = a.actors;
  state.health = h;
  renderActors();
}

async function loadHealth() {
  const res = await fetch('/health', { headers: token() ? { authorization: `Bearer ${token()}` } : {} });
  if (res.status === 401) return null;
  return res.json();
}

async function loadOrders() {
  const o = await safe(get('/orders'));
  if (!o) return;
  state.orders = new Map(o.orders.map((x) => [x.client_order_id, x]));
  // Fills before this page loaded: one line per order that filled (its average price).
  state.fills = o.orders
    .filter((x) => x.filled_qty > 0)
    .reverse()
    .map((x) => ({ client_order_id: x.client_order_id, time: x.updated_at, symbol: x.symbol, side: x.side, qty: x.filled_qty, price: x.avg_fill_price, commission: x.commission, reason: x.reason }));
  renderOrders();
  for (const order of o.orders) markOrder(order);
}

/** The page's first GET /dashboard/bars (fired from index.html's <head>), taken once. */
let firstBars = /** @type {any} */ (window).barkeepFirstBars ?? null;

async function loadAll() {
  const statuses = Promise.all([loadLive(safe(get('/feed/switches'))), loadCollector()]);
  // First load: the charts come from the one request the page's head made, without waiting for the
  // statuses; symbols they do not cover (and every later reload) are fetched per symbol after them.
  const first = firstBars ? drawFirstBars(firstBars) : Promise.resolve(new Set());
  firstBars = null;
  const charts = Promise.all([first, statuses]).then(([done]) => loadSymbols(done));
  await Promise.all([charts, loadActors(), loadOrders()]);
  for (const o of state.orders.values()) markOrder(o);
}

const refreshLive = debounce(loadLive, 400);
const refreshActors = debounce(loadActors, 300);

// ---- overview -----------------------------------------------------------------------------

function renderActors() {
  const h = state.health;
  const badge = $('health');
  badge.textContent = h ? (h.status === 'ok' ? 'healthy' : 'degraded') : '?';
  badge.className = `badge ${h?.status === 'ok' ? 'good' : 'bad'}`;
  $('health-reasons').textContent = h?.reasons?.length ? h.reasons.join('; ') : '';
  fillRows(
    $('actors-table').tBodies[0],
    state.actors.map((a) =>
      el(
        'tr',
        { 'data-actor': a.name },
        el('td', {}, a.name),
        el('td', { class: `state-${a.state}` }, a.state),
        el('td', { class: 'num' }, a.restarts),
        el('td', {}, duration(a.uptime_s)),
        el('td', {}, a.thread_id ?? '—'),
        el('td', { class: 'reason' }, a.last_error ?? ''),
      ),
    ),
  );
}

function renderCollector() {
  const c = state.collector;
  if (!c) return;
  facts($('collector'), [
    ['running', c.is_running ? 'yes' : 'no'],
    ['source', `${c.source} (${c.api_type})`, 'collector-source'],
    ['preferred', c.preferred_source],
    ['failover', c.failover_reason ?? 'none'],
    ['symbols', `${(c.symbols ?? []).join(', ')} · ${c.bar_size}`],
    ['trading hours', c.is_trading_hours ? 'yes' : 'no'],
    ['next cycle', ny(c.next_cycle_at)],
    ['cycles', c.cycles ?? '—'],
    ['bars written', c.bars_written ?? '—'],
  ]);
  fillRows(
    $('collection-table').tBodies[0],
    Object.entries(c.last_collection_times ?? {}).map(([s, t]) => el('tr', {}, el('td', {}, s), el('td', {}, ny(t)))),
  );
  const errs = c.errors ?? [];
  $('collector-errors').replaceChildren(
    ...(errs.length
      ? errs.slice(0, 8).map((e) => el('li', {}, `${ny(e.at)} ${e.source}${e.symbol ? ` ${e.symbol}` : ''}: ${e.code}${e.status ? ` ${e.status}` : ''} ${e.message}`))
      : [el('li', { class: 'muted' }, 'none')]),
  );
}

function renderLive() {
  const s = state.live;
  if (!s) return;
  const killed = Boolean(s.risk?.killed);
  $('killed').hidden = !killed;
  document.body.dataset.killed = String(killed);
  facts($('live-summary'), [
    ['running', s.is_running ? 'yes' : 'no', 'live-running'],
    ['strategy', `${s.strategy ?? '—'} on ${s.broker ?? '—'}`],
    ['symbols', `${(s.symbols ?? []).join(', ') || '—'} · ${s.bar_size ?? '—'}`],
    ['last bar', ny(s.last_bar_time)],
    ['bars handled', s.bars_collected],
    ['signals', s.signals],
    ['kill switch', killed ? 'ENGAGED' : 'off', 'kill-state'],
    ['P&L today', usd(s.pnl_today?.total)],
    ['feed', Object.entries(s.feed ?? {}).map(([sym, f]) => `${sym}: ${f.rung ?? 'none'}`).join(' · ') || '—'],
  ]);
  facts($('account'), [
    ['cash', usd(s.cash), 'cash'],
    ['P&L today', usd(s.pnl_today?.total), 'pnl-total'],
    ['realized', usd(s.pnl_today?.realized)],
    ['unrealized', usd(s.pnl_today?.unrealized)],
    ['broker', s.broker ?? '—'],
  ]);
  const paused = Object.entries(s.paused_symbols ?? {});
  facts($('risk'), [
    ['kill switch', killed ? 'ENGAGED' : 'off'],
    ['refusals', Object.entries(s.risk?.refusals ?? {}).map(([r, n]) => `${r}: ${n}`).join(', ') || 'none', 'refusals'],
    ['last refusal', s.risk?.last_refusal ?? '—'],
    ['paused symbols', paused.length ? paused.map(([sym, why]) => `${sym} (${why})`).join('; ') : 'none', 'paused'],
    ['strategy errors', s.strategy_errors],
  ]);
  fillRows(
    $('positions-table').tBodies[0],
    (s.positions ?? []).map((p) =>
      el(
        'tr',
        { 'data-symbol': p.symbol },
        el('td', {}, p.symbol),
        el('td', { class: 'num' }, p.qty),
        el('td', { class: 'num' }, num(p.avg_price)),
        el('td', { class: 'num' }, num(p.last_price)),
        el('td', { class: 'num' }, usd(p.market_value)),
        el('td', { class: 'num' }, usd(p.unrealized_pnl)),
      ),
    ),
  );
  fillRows($('open-orders-table').tBodies[0], (s.open_orders ?? []).map((o) => orderRow(o, false)));
  renderLadders();
}

// ---- trading ------------------------------------------------------------------------------

/** market, limit 101.50, stop 99.00, stop_limit 99.00/98.50, trailing_stop 2%; a bracket leg's role after it. */
function orderType(o) {
  let t = o.type ?? 'market';
  if (t === 'limit') t = `limit ${num(o.limit_price)}`;
  else if (t === 'stop') t = `stop ${num(o.stop_price)}`;
  else if (t === 'stop_limit') t = `stop ${num(o.stop_price)} limit ${num(o.limit_price)}`;
  else if (t === 'trailing_stop') t = `trailing ${o.trail && 'percent' in o.trail ? `${o.trail.percent}%` : num(o.trail?.amount)}`;
  return o.role && o.role !== 'entry' ? `${t} (${o.role.replace('_', ' ')})` : t;
}

function orderRow(o, full = true) {
  const cells = [
    el('td', {}, ny(o.created_at)),
    el('td', {}, o.symbol),
    el('td', { class: o.side }, o.side),
    el('td', { class: 'num' }, o.qty),
    el('td', {}, orderType(o)),
    el('td', { class: `state-${o.state}` }, o.state),
  ];
  if (full) {
    cells.push(
      el('td', { class: 'num' }, `${o.filled_qty}/${o.qty}`),
      el('td', { class: 'num' }, num(o.avg_fill_price)),
      el('td', { class: 'num' }, num(o.commission)),
    );
  }
  cells.push(el('td', { class: 'reason' }, o.reject_reason ? `${o.reason} — rejected: ${o.reject_reason}` : o.reason));
  if (full) cells.push(el('td', { class: 'muted' }, o.client_order_id));
  return el('tr', { 'data-order': o.client_order_id, 'data-state': o.state }, ...cells);
}

function renderOrders() {
  const orders = [...state.orders.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  fillRows($('orders-table').tBodies[0], orders.slice(0, 500).map((o) => orderRow(o)));
  fillRows(
    $('fills-table').tBodies[0],
    state.fills.slice(0, 300).map((f) =>
      el(
        'tr',
        {},
        el('td', {}, ny(f.time)),
        el('td', {}, f.symbol),
        el('td', { class: f.side }, f.side),
        el('td', { class: 'num' }, f.qty),
        el('td', { class: 'num' }, num(f.price)),
        el('td', { class: 'num' }, num(f.commission)),
        el('td', { class: 'reason' }, f.reason),
      ),
    ),
  );
}

const marked = new Set();
/** Puts a filled order on its symbol's chart once (orders loaded at start: one marker per order). */
function markOrder(o) {
  if (!o.filled_qty || marked.has(o.client_order_id)) return;
  const chart = state.charts.get(o.symbol);
  if (!chart) return;
  marked.add(o.client_order_id);
  chart.addFill({ time: o.updated_at, side: o.side, qty: o.filled_qty, price: o.avg_fill_price ?? 0, reason: o.reason });
}

// ---- symbols ------------------------------------------------------------------------------

function symbolsShown() {
  const set = new Set([...(state.live?.symbols ?? []), ...(state.collector?.symbols ?? [])]);
  return [...set].sort();
}

/** Bars set before the first paint of a chart (a few screens); the rest follows at once after it. */
const FIRST_PAINT_BARS = 720;

/** The panel and chart of a symbol, made once. */
function ensureChart(symbol, barSize) {
  let chart = state.charts.get(symbol);
  if (chart) return chart;
  const chartEl = el('div', { class: 'chart', 'data-testid': `chart-${symbol}` });
  const panel = el(
    'article',
    { class: 'symbol-panel', 'data-symbol': symbol },
    el('header', {}, el('h2', {}, symbol), el('span', { class: 'muted' }, `${barSize} · feed `), el('span', { class: 'rung-label', 'data-testid': `rung-${symbol}` }, '…')),
    chartEl,
    el('div', { class: 'ladder', 'data-testid': `ladder-${symbol}` }),
    el('ul', { class: 'switches', 'data-testid': `switches-${symbol}` }),
  );
  $('symbol-panels').append(panel);
  chart = new CandleChart(chartEl, barSize);
  state.charts.set(symbol, chart);
  return chart;
}

function fillSymbolFilter(symbols) {
  const select = $('symbol-filter');
  const chosen = select.value;
  select.replaceChildren(el('option', { value: '' }, 'all'), ...symbols.map((s) => el('option', { value: s, selected: s === chosen }, s)));
}

/** Draws one chart's data and marks it ready once lightweight-charts has painted (the next frame). */
async function draw(symbol, chart, set) {
  performance.mark(`bars-${symbol}`);
  set(chart);
  chart.ranged = false;
  fitRecent(chart);
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  chart.el.dataset.ready = 'true';
  performance.mark(`drawn-${symbol}`);
}

/**
 * The first load's charts, from the one GET /dashboard/bars the page's <head> fired before the
 * scripts loaded: drawn without waiting for the statuses. Returns the symbols drawn.
 */
async function drawFirstBars(pending) {
  const first = await pending;
  if (!first?.bars) return new Set();
  fillSymbolFilter(first.symbols);
  const drawnNow = new Set();
  await Promise.all(
    first.symbols.map(async (symbol) => {
      const cols = first.bars[symbol];
      if (!cols) return;
      drawnNow.add(symbol);
      // What is in view first (the newest bars), painted at once; the days before it right after.
      await draw(symbol, ensureChart(symbol, first.bar_size), (chart) => chart.setColumns(cols, { tail: FIRST_PAINT_BARS }));
    }),
  );
  applySymbolFilter();
  setTimeout(() => {
    for (const symbol of drawnNow) state.charts.get(symbol)?.completeHistory();
  }, 0);
  return drawnNow;
}

/** Charts for every symbol shown; bars fetched for those not in `done` (drawn from the first load). */
async function loadSymbols(done = new Set()) {
  const symbols = symbolsShown();
  const barSize = state.live?.bar_size ?? state.collector?.bar_size ?? '1Min';
  const todo = symbols.filter((s) => !done.has(s));
  // The bars are asked for first; the charts are built while they come.
  const fetched = todo.map((symbol) => safe(get(`/bars/${encodeURIComponent(symbol)}?bar_size=${barSize}&limit=10000`)));
  fillSymbolFilter(symbols);
  for (const symbol of todo) ensureChart(symbol, barSize);
  await Promise.all(
    todo.map(async (symbol, i) => {
      const r = await fetched[i];
      if (r) await draw(symbol, state.charts.get(symbol), (chart) => chart.setBars(r.bars));
    }),
  );
  for (const o of state.orders.values()) markOrder(o);
  applySymbolFilter();
  renderLadders();
}

/** Fetches bars after the chart's last one (a `collector` event said there are new ones). */
async function catchUpBars(symbol) {
  const chart = state.charts.get(symbol);
  if (!chart || !chart.lastTime) return;
  const barSize = state.live?.bar_size ?? state.collector?.bar_size ?? '1Min';
  const r = await safe(get(`/bars/${encodeURIComponent(symbol)}?bar_size=${barSize}&limit=10000&from=${chart.lastTime * 1000}`));
  for (const b of r?.bars ?? []) chart.update(b);
}

/** Shows the last few hours; only once the chart is visible (a hidden chart has no width). */
function fitRecent(chart) {
  if (chart.ranged || chart.el.clientWidth === 0) return;
  chart.ranged = true;
  chart.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, chart.count - 240), to: chart.count + 5 });
}

function applySymbolFilter() {
  const only = $('symbol-filter').value;
  for (const panel of document.querySelectorAll('.symbol-panel')) panel.hidden = Boolean(only) && panel.dataset.symbol !== only;
}

function renderLadders() {
  const now = Date.now();
  for (const [symbol, hist] of state.ladder) {
    const label = document.querySelector(`[data-testid="rung-${CSS.escape(symbol)}"]`);
    if (!label) continue;
    const cur = hist[hist.length - 1];
    label.textContent = cur?.rung ?? 'none';
    label.title = cur?.reason ?? '';
    const bar = document.querySelector(`[data-testid="ladder-${CSS.escape(symbol)}"]`);
    const t0 = Date.parse(hist[0]?.since ?? '') || now;
    const total = Math.max(1, now - t0);
    bar.replaceChildren(
      ...hist.map((h, i) => {
        const start = Date.parse(h.since) || t0;
        const end = i + 1 < hist.length ? Date.parse(hist[i + 1].since) || now : now;
        const span = el('span', { class: `rung-${h.rung ?? 'none'}`, title: `${h.rung ?? 'none'} since ${ny(h.since)}: ${h.reason}` });
        span.style.flex = `${Math.max(0.5, ((end - start) / total) * 100)} 0 0`;
        return span;
      }),
    );
    const list = document.querySelector(`[data-testid="switches-${CSS.escape(symbol)}"]`);
    list.replaceChildren(...hist.slice().reverse().map((h) => el('li', {}, `${ny(h.since)} → ${h.rung ?? 'none'}: ${h.reason}`)));
  }
}

// ---- backtests ----------------------------------------------------------------------------

function listOf(body) {
  if (Array.isArray(body)) return body;
  for (const k of ['backtests', 'items', 'runs']) if (Array.isArray(body?.[k])) return body[k];
  return [];
}

function scalarEntries(obj) {
  return Object.entries(obj ?? {}).filter(([, v]) => v === null || ['number', 'string', 'boolean'].includes(typeof v));
}

function fmtValue(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4);
  return v === null ? '—' : String(v);
}

async function loadBacktests() {
  let body;
  try {
    body = await get('/backtests');
  } catch (err) {
    if (!(err instanceof HttpError && (err.status === 404 || err.status === 405))) notice(`backtests: ${err.message}`, 'bad');
    body = [];
  }
  state.backtests = listOf(body);
  renderBacktests();
}

/** One row per backtest: its id, kind, state and headline metrics. */
function backtestRow(b) {
  const m = b.metrics ?? {};
  return {
    id: b.id,
    kind: b.kind ?? '',
    state: b.state ?? '',
    strategy: b.request?.strategy ?? '',
    symbols: (b.request?.symbols ?? []).join(' '),
    from: b.request?.from ? ny(b.request.from) : '',
    to: b.request?.to ? ny(b.request.to) : '',
    final_equity: m.final_equity ?? null,
    total_return: m.total_return ?? null,
    sharpe: m.sharpe ?? null,
    max_drawdown: m.max_drawdown ?? null,
    trades: m.trades ?? null,
  };
}

function renderBacktests() {
  const list = state.backtests ?? [];
  $('backtests-empty').hidden = list.length > 0;
  $('backtests-body').hidden = list.length === 0;
  if (!list.length) return;
  const rows = list.map(backtestRow);
  const cols = Object.keys(rows[0]);
  const table = $('backtests-table');
  table.tHead.replaceChildren(el('tr', {}, ...cols.map((c) => el('th', {}, c.replace(/_/g, ' ')))));
  fillRows(
    table.tBodies[0],
    rows.map((b) => {
      const tr = el('tr', { class: `clickable${b.id === state.selectedBacktest ? ' selected' : ''}`, 'data-backtest': b.id }, ...cols.map((c) => el('td', {}, fmtValue(b[c]))));
      tr.addEventListener('click', () => showBacktest(b.id));
      return tr;
    }),
  );
  if (!state.selectedBacktest) void showBacktest(list[0].id);
}

let equity = null;
async function showBacktest(id) {
  state.selectedBacktest = id;
  for (const tr of document.querySelectorAll('#backtests-table tbody tr')) tr.classList.toggle('selected', tr.dataset.backtest === String(id));
  const r = await safe(get(`/backtests/${encodeURIComponent(id)}`));
  if (!r) return;
  const report = r.report ?? {};
  $('backtest-title').textContent = `Equity · ${id}${r.state && r.state !== 'done' ? ` (${r.state}${r.progress ? ` ${Math.round(r.progress.fraction * 100)}%` : ''})` : ''}`;
  equity?.remove();
  equity = equityChart($('equity-chart'), Array.isArray(report.equity_curve) ? report.equity_curve : []);
  $('equity-chart').dataset.points = String(report.equity_curve?.length ?? 0);
  facts(
    $('backtest-metrics'),
    r.error ? [['error', `${r.error.code}: ${r.error.message}`]] : scalarEntries(report).slice(0, 28).map(([k, v]) => [k.replace(/_/g, ' '), fmtValue(v)]),
  );
  const sweep = r.combinations ?? [];
  const sweepTable = $('sweep-table');
  if (Array.isArray(sweep) && sweep.length) {
    const flat = sweep.map((row) => ({
      ...(row.params ?? {}),
      ok: row.ok,
      ...Object.fromEntries(scalarEntries(row.metrics ?? {}).filter(([k]) => ['final_equity', 'total_return', 'sharpe', 'sortino', 'max_drawdown', 'win_rate', 'trades'].includes(k))),
      error: row.error?.message ?? null,
    }));
    const cols = [...new Set(flat.flatMap((f) => Object.keys(f)))];
    sweepTable.tHead.replaceChildren(el('tr', {}, ...cols.map((c) => el('th', {}, c.replace(/_/g, ' ')))));
    fillRows(sweepTable.tBodies[0], flat.map((f) => el('tr', {}, ...cols.map((c) => el('td', {}, fmtValue(f[c] ?? null))))));
  } else {
    sweepTable.tHead.replaceChildren();
    fillRows(sweepTable.tBodies[0], [el('tr', {}, el('td', { class: 'muted' }, 'not a sweep'))]);
  }
}

// ---- views --------------------------------------------------------------------------------

const VIEWS = ['overview', 'symbols', 'trading', 'backtests'];

function showView() {
  const view = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : 'overview';
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('nav a[data-view]')) a.classList.toggle('active', a.dataset.view === view);
  document.body.dataset.view = view;
  if (view === 'backtests') void loadBacktests();
  if (view === 'symbols') requestAnimationFrame(() => state.charts.forEach(fitRecent));
}

// ---- live events --------------------------------------------------------------------------

function connect() {
  const badge = $('stream');
  subscribe({
    state(s) {
      badge.textContent = s === 'open' ? 'live' : s;
      badge.className = `badge ${s === 'open' ? 'good' : 'warn'}`;
      document.body.dataset.stream = s;
    },
    bar(b) {
      state.charts.get(b.symbol)?.update(b);
      refreshLive();
    },
    order(o) {
      state.orders.set(o.client_order_id, o);
      renderOrders();
      refreshLive();
    },
    fill(f) {
      state.fills.unshift(f);
      marked.add(f.client_order_id);
      state.charts.get(f.symbol)?.addFill(f);
      renderOrders();
      refreshLive();
    },
    feed_switch(f, id) {
      const hist = state.ladder.get(f.symbol) ?? [];
      if (id && hist.some((h) => h.id === id)) return;
      const last = hist[hist.length - 1];
      // The same switch already read from /live/status: it gets its id, not a second entry.
      if (last && !last.id && last.rung === f.rung) {
        last.id = id;
        return;
      }
      hist.push({ id, rung: f.rung, since: f.at, reason: f.reason });
      state.ladder.set(f.symbol, hist.slice(-LADDER_KEEP));
      renderLadders();
      refreshLive();
    },
    actor(a) {
      const i = state.actors.findIndex((x) => x.name === a.name);
      const { type: _t, actor: _a, at: _at, ...info } = a;
      if (i >= 0) state.actors[i] = info;
      else state.actors.push(info);
      renderActors();
      refreshActors();
    },
    collector(c) {
      if (c.kind === 'written') {
        void catchUpBars(c.symbol);
        return;
      }
      if (state.collector) Object.assign(state.collector, Object.fromEntries(Object.entries(c).filter(([k]) => !['kind', 'type', 'actor', 'at'].includes(k))));
      renderCollector();
    },
    reset(r) {
      notice(`Live updates restarted (${r.reason}); reloading.`);
      void loadAll();
    },
    dropped(d) {
      notice(`${d.count} live update(s) were dropped (this page read too slowly); reloading.`, 'bad');
      void loadAll();
    },
  });
}

// ---- controls -----------------------------------------------------------------------------

async function control(path, body, done) {
  try {
    state.live = await post(path, body);
    renderLive();
    notice(done, 'good');
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) notice(`Refused: ${err.message}. The token was missing or wrong.`, 'bad');
    else notice(`${path} failed: ${err.message}`, 'bad');
  }
}

function wireControls() {
  $('kill').addEventListener('click', () => {
    if (!confirm('Engage the kill switch? Open orders are cancelled and new orders refused.')) return;
    void control('/live/kill', { flatten: false }, 'Kill switch engaged: open orders cancelled, new orders refused.');
  });
  $('resume').addEventListener('click', () => void control('/live/resume', {}, 'Kill switch released.'));
  $('token-button').addEventListener('click', async () => {
    await askToken();
    await loadAll();
  });
  $('symbol-filter').addEventListener('change', applySymbolFilter);
  window.addEventListener('hashchange', showView);
}

async function main() {
  wireControls();
  state.info = await loadInfo();
  if (!state.info.token_required) $('token-button').hidden = true;
  showView();
  connect();
  await loadAll();
  document.body.dataset.loaded = 'true';
  setInterval(renderLadders, 30_000);
}

main().catch((err) => {
  notice(`The dashboard could not start: ${err.message}`, 'bad');
  setToken(token());
});
