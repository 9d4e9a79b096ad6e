/**
 * What a backtest leaves for a person and for a program: the metrics table printed on the
 * terminal, the trade digest line, and a results folder with
 *   report.json   the report (as `--json` prints it), with the full trade list
 *   trades.csv    round trips          orders.csv   every order      fills.csv   every fill
 *   daily.csv     equity and P&L per symbol at each day's end
 *   equity.html   a self-contained page (inline SVG, no script, no network) with the equity curve
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BacktestDetail, BacktestReport, EquityPoint, Metrics } from './report.ts';

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);
const num = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
const money = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const ROWS: Array<[string, (m: Metrics) => string]> = [
  ['final equity', (m) => money(m.final_equity)],
  ['P&L', (m) => money(m.pnl)],
  ['total return', (m) => pct(m.total_return)],
  ['CAGR', (m) => pct(m.cagr)],
  ['Sharpe', (m) => num(m.sharpe)],
  ['Sortino', (m) => num(m.sortino)],
  ['max drawdown', (m) => pct(m.max_drawdown)],
  ['max DD duration (days)', (m) => num(m.max_drawdown_duration_days)],
  ['trades', (m) => String(m.trades) + (m.open_trades ? ` (+${m.open_trades} open)` : '')],
  ['win rate', (m) => pct(m.win_rate)],
  ['profit factor', (m) => num(m.profit_factor)],
  ['exposure', (m) => pct(m.exposure)],
  ['turnover', (m) => num(m.turnover)],
  ['commissions', (m) => money(m.commissions)],
];

/** The metrics, per symbol and in total, as an aligned table. */
export function metricsTable(report: BacktestReport): string {
  const symbols = Object.keys(report.per_symbol);
  const scopes: Array<[string, Metrics]> = symbols.length > 1 ? [...symbols.map((s): [string, Metrics] => [s, report.per_symbol[s]]), ['total', report]] : [['total', report]];
  const headers = ['', ...scopes.map(([name]) => name)];
  const rows = ROWS.map(([label, f]) => [label, ...scopes.map(([, m]) => f(m))]);
  const cells = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')).join('\n');
}

export function headline(report: BacktestReport): string {
  const params = Object.entries(report.params)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const exits = report.exits
    ? ` with exits ${Object.entries(report.exits)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`
    : '';
  return `${report.strategy}${params ? ` ${params}` : ''}${exits} on ${report.symbols.join(',')} ${report.bar_size}, ${report.from.slice(0, 10)} .. ${report.to.slice(0, 10)}: ${report.bars} bars`;
}

/** One line that says what was traded, and a hash that changes when any fill does. */
export function digestLine(report: BacktestReport, detail: BacktestDetail): string {
  const buys = detail.fills.filter((f) => f.side === 'buy').length;
  return `trades: ${report.trades} closed, ${report.open_trades} open; ${report.orders} orders (${report.refused} refused by risk), ${buys} buys / ${detail.fills.length - buys} sells; digest ${report.digest}`;
}

function csv(headers: string[], rows: ReadonlyArray<ReadonlyArray<unknown>>): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'number' && !Number.isFinite(v) ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[headers, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`;
}

const iso = (t: number) => new Date(t).toISOString();

/** Writes the results folder (created if needed); returns the files written. */
export function writeResults(dir: string, report: BacktestReport, detail: BacktestDetail): string[] {
  mkdirSync(dir, { recursive: true });
  const files: Array<[string, string]> = [
    ['report.json', `${JSON.stringify({ ...report, trade_list: detail.trades }, null, 2)}\n`],
    [
      'trades.csv',
      csv(
        ['symbol', 'direction', 'entry_time', 'exit_time', 'qty', 'entry_price', 'exit_price', 'pnl', 'return', 'commission', 'open'],
        detail.trades.map((t) => [t.symbol, t.direction, t.entry_time, t.exit_time, t.qty, t.entry_price, t.exit_price, t.pnl, t.return, t.commission, t.open]),
      ),
    ],
    [
      'orders.csv',
      csv(
        [
          'client_order_id',
          'symbol',
          'side',
          'qty',
          'type',
          'limit_price',
          'stop_price',
          'tif',
          'group_id',
          'role',
          'state',
          'filled_qty',
          'avg_fill_price',
          'commission',
          'bar_start',
          'created_at',
          'reason',
          'reject_reason',
        ],
        detail.orders.map((o) => [
          o.clientOrderId,
          o.symbol,
          o.side,
          o.qty,
          o.type,
          o.limitPrice ?? null,
          o.stopPrice ?? null,
          o.tif ?? 'day',
          o.groupId ?? null,
          o.role ?? null,
          o.state,
          o.filledQty,
          o.filledQty > 0 ? o.avgFillPrice : null,
          o.commission,
          iso(o.barStart),
          iso(o.createdAt),
          o.reason,
          o.rejectReason ?? null,
        ]),
      ),
    ],
    [
      'fills.csv',
      csv(
        ['time', 'symbol', 'side', 'qty', 'price', 'commission', 'client_order_id', 'exec_id'],
        detail.fills.map((f) => [iso(f.time), f.symbol, f.side, f.qty, f.price, f.commission, f.clientOrderId, f.execId]),
      ),
    ],
    [
      'daily.csv',
      csv(
        ['date', 'equity', 'cash', ...report.symbols.map((s) => `pnl_${s}`)],
        detail.daily.map((d) => [d.date, Math.round(d.equity * 1e4) / 1e4, Math.round(d.cash * 1e4) / 1e4, ...report.symbols.map((s) => Math.round((d.pnl[s] ?? 0) * 1e4) / 1e4)]),
      ),
    ],
    ['equity.html', equityPage(report)],
  ];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The equity curve as an SVG (drawdowns shaded under the running peak). */
export function equitySvg(points: readonly EquityPoint[], startingCash: number, width = 960, height = 360): string {
  const pad = { l: 80, r: 20, t: 20, b: 40 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  if (points.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><text x="20" y="40">no bars</text></svg>`;
  }
  const ts = points.map((p) => Date.parse(p.time));
  const eq = points.map((p) => p.equity);
  const t0 = ts[0];
  const t1 = ts[ts.length - 1] === t0 ? t0 + 1 : ts[ts.length - 1];
  let lo = Math.min(startingCash, ...eq);
  let hi = Math.max(startingCash, ...eq);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const x = (t: number) => pad.l + ((t - t0) / (t1 - t0)) * w;
  const y = (v: number) => pad.t + (1 - (v - lo) / (hi - lo)) * h;
  const line = points.map((_, i) => `${x(ts[i]).toFixed(1)},${y(eq[i]).toFixed(1)}`).join(' ');
  let peak = -Infinity;
  const peaks = eq.map((v) => (peak = Math.max(peak, v)));
  const dd = `${points.map((_, i) => `${x(ts[i]).toFixed(1)},${y(peaks[i]).toFixed(1)}`).join(' ')} ${points
    .map((_, i) => `${x(ts[i]).toFixed(1)},${y(eq[i]).toFixed(1)}`)
    .reverse()
    .join(' ')}`;
  const ticks = [lo, (lo + hi) / 2, hi]
    .map(
      (v) =>
        `<line x1="${pad.l}" x2="${pad.l + w}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${money(v)}</text>`,
    )
    .join('');
  const dates = [t0, (t0 + t1) / 2, t1]
    .map((t, i) => `<text x="${x(t).toFixed(1)}" y="${height - 12}" text-anchor="${['start', 'middle', 'end'][i]}" font-size="11">${new Date(t).toISOString().slice(0, 16).replace('T', ' ')}Z</text>`)
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<rect x="${pad.l}" y="${pad.t}" width="${w}" height="${h}" fill="#fafafa" stroke="#ccc"/>${ticks}
<line x1="${pad.l}" x2="${pad.l + w}" y1="${y(startingCash).toFixed(1)}" y2="${y(startingCash).toFixed(1)}" stroke="#999" stroke-dasharray="4 3"/>
<polygon points="${dd}" fill="#e4572e" fill-opacity="0.25" stroke="none"/>
<polyline points="${line}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>${dates}
</svg>`;
}

export function equityPage(report: BacktestReport): string {
  const table = metricsTable(report);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>barkeep backtest: ${esc(headline(report))}</title>
<style>body{font-family:sans-serif;margin:24px;color:#222}pre{background:#f5f5f5;padding:12px;overflow:auto}</style></head>
<body><h1>Backtest</h1><p>${esc(headline(report))}</p><p>digest <code>${esc(report.digest)}</code></p>
${equitySvg(report.equity_curve, report.starting_cash)}
<p>Blue: equity at each bar close (thinned to ${report.equity_curve.length} points). Shaded: drawdown below the running peak. Dashed: starting cash.</p>
<pre>${esc(table)}</pre></body></html>
`;
}
