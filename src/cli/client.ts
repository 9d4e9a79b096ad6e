/**
 * The commands that talk to a running barkeep over HTTP: status, orders, fills, kill, resume,
 * config show. `--url` (else BARKEEP_URL, else the configured server.host:port); the token for POSTs
 * comes from BARKEEP_API_TOKEN, never from the command line. Exit codes: 0 done, 1 failed (server
 * unreachable, refused), 2 bad usage.
 */
import { parseArgs } from 'node:util';
import { configLayers, loadConfigFrom, ConfigError } from '../config/load.ts';
import { formatSettings, settingsWithSources, type Setting } from '../config/sources.ts';
import { UsageError } from './args.ts';
import { BarkeepError } from '../errors.ts';

export interface ClientIo {
  env: NodeJS.ProcessEnv;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

interface Spec {
  usage: string;
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  positionals?: number;
}

const COMMON = "  --url URL   the server (default: BARKEEP_URL, else server.host:server.port from the config)\n  --json      print the server's JSON";

export const CLIENT_COMMANDS: Record<string, Spec> = {
  status: { usage: `usage: barkeep status [--url URL] [--json]\n  the trading loop, positions, P&L, feed and last signal per symbol\n${COMMON}`, options: { json: { type: 'boolean' } } },
  orders: {
    usage: `usage: barkeep orders [--symbol SYM] [--since TIME] [--state STATE] [--limit N] [--csv|--json] [--url URL]
  orders from the journal, oldest first (GET /orders)
  --state   pending|submitted|partially_filled|filled|cancelled|rejected|open|final
  --since   ISO time or epoch ms: orders updated since then
  --csv     comma-separated, with a header line
${COMMON}`,
    options: { symbol: { type: 'string' }, since: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' }, csv: { type: 'boolean' }, json: { type: 'boolean' } },
  },
  fills: {
    usage: `usage: barkeep fills [--symbol SYM] [--since TIME] [--limit N] [--csv|--json] [--url URL]
  every fill, oldest first (GET /fills)
  --csv     comma-separated, with a header line
${COMMON}`,
    options: { symbol: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, csv: { type: 'boolean' }, json: { type: 'boolean' } },
  },
  kill: {
    usage: `usage: barkeep kill [--flatten] [--url URL]
  engage the kill switch: no new orders, working orders cancelled; --flatten also closes every position
  the token comes from BARKEEP_API_TOKEN
${COMMON}`,
    options: { flatten: { type: 'boolean' }, json: { type: 'boolean' } },
  },
  resume: { usage: `usage: barkeep resume [--url URL]\n  release the kill switch\n${COMMON}`, options: { json: { type: 'boolean' } } },
  config: {
    usage: `usage: barkeep config show [--local] [--json] [--url URL]
  every effective setting and where it came from: default, file, environment, or the running session
  (resumed, POST /live/start). Secrets are shown as [redacted]. --local reads the files and the
  environment only, without asking the server.
${COMMON}`,
    options: { local: { type: 'boolean' }, json: { type: 'boolean' } },
    positionals: 1,
  },
};

function baseUrl(env: NodeJS.ProcessEnv, given: string | undefined): string {
  if (given) return given.replace(/\/+$/, '');
  if (env.BARKEEP_URL) return env.BARKEEP_URL.replace(/\/+$/, '');
  try {
    const c = loadConfigFrom(configLayers({ env }));
    const host = c.server.host === '0.0.0.0' || c.server.host === '::' ? '127.0.0.1' : c.server.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${c.server.port}`;
  } catch {
    return 'http://127.0.0.1:8000';
  }
}

/** The server could not be reached, or it refused the call. */
class Failure extends BarkeepError<'UNREACHABLE' | 'REFUSED'> {}

async function call(url: string, method: 'GET' | 'POST', path: string, env: NodeJS.ProcessEnv, body?: unknown): Promise<any> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST' && env.BARKEEP_API_TOKEN) headers.authorization = `Bearer ${env.BARKEEP_API_TOKEN}`;
  let res: Response;
  try {
    res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new Failure('UNREACHABLE', `cannot reach barkeep at ${url} (${cause}); is it running? (--url, BARKEEP_URL)`);
  }
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = typeof parsed === 'object' && parsed?.message ? parsed.message : text.slice(0, 300);
    throw new Failure('REFUSED', `${method} ${path}: ${res.status} ${msg}`);
  }
  return parsed;
}

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(rows: Record<string, unknown>[], columns: string[]): string {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

const money = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const px = (x: number | null | undefined) => (x === null || x === undefined ? '-' : String(Math.round(x * 10_000) / 10_000));

const ORDER_COLUMNS = [
  'created_at',
  'updated_at',
  'client_order_id',
  'strategy',
  'symbol',
  'side',
  'qty',
  'type',
  'limit_price',
  'state',
  'filled_qty',
  'avg_fill_price',
  'commission',
  'reason',
  'reject_reason',
];
const FILL_COLUMNS = ['time', 'exec_id', 'client_order_id', 'strategy', 'symbol', 'side', 'qty', 'price', 'commission'];

export function formatStatus(url: string, s: any): string {
  const lines: string[] = [];
  const by = s.started_by ? ` (settings: ${s.started_by})` : '';
  lines.push(
    s.is_running
      ? `barkeep at ${url}: trading ${s.bar_size} bars on ${s.symbols.join(', ')} with ${s.strategy}${s.strategy_module ? ` (${s.strategy_module})` : ''}, ${s.broker} broker${by}`
      : `barkeep at ${url}: the trading loop is stopped`,
  );
  lines.push(`kill switch: ${s.risk?.killed ? 'ENGAGED (barkeep resume releases it)' : 'off'}`);
  lines.push(`P&L today: realized ${money(s.pnl_today?.realized)}, unrealized ${money(s.pnl_today?.unrealized)}, total ${money(s.pnl_today?.total)}; cash ${money(s.cash)}`);
  lines.push(`bars: ${s.bars_collected}, last ${s.last_bar_time ?? '-'}; signals: ${s.signals}; open orders: ${s.open_orders?.length ?? 0}`);
  const symbols = [...new Set<string>([...(s.symbols ?? []), ...(s.positions ?? []).map((p: any) => p.symbol)])];
  if (symbols.length > 0) {
    const rows = [['SYMBOL', 'POSITION', 'AVG', 'LAST', 'UNREALIZED', 'FEED', 'LAST SIGNAL']];
    for (const sym of symbols) {
      const p = (s.positions ?? []).find((x: any) => x.symbol === sym);
      const sig = s.last_signals?.[sym];
      rows.push([
        sym,
        String(p?.qty ?? 0),
        px(p?.avg_price),
        px(p?.last_price),
        money(p?.unrealized_pnl),
        s.feed?.[sym]?.rung ?? '-',
        sig ? `${sig.signal} -> ${sig.action}: ${sig.reason}` : s.paused_symbols?.[sym] ? `paused: ${s.paused_symbols[sym]}` : '-',
      ]);
    }
    lines.push(table(rows).trimEnd());
  }
  if (s.risk?.last_refusal) lines.push(`last refusal: ${s.risk.last_refusal}`);
  return lines.join('\n') + '\n';
}

function query(values: Record<string, unknown>, keys: string[]): string {
  const q = new URLSearchParams();
  for (const k of keys) if (typeof values[k] === 'string') q.set(k, values[k] as string);
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function clientCommand(command: string, argv: string[], io: ClientIo): Promise<number> {
  const spec = CLIENT_COMMANDS[command];
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { ...spec.options, url: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }) as { values: Record<string, unknown>; positionals: string[] });
    if (values.help) {
      io.out.write(`${spec.usage}\n`);
      return 0;
    }
    if (command === 'config') {
      if (positionals[0] !== 'show' || positionals.length !== 1)
        throw new UsageError(positionals.length === 0 ? 'what to do is missing: config show' : `unknown: config ${positionals.join(' ')} (try: config show)`);
    } else if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values.csv && values.json) throw new UsageError('--csv and --json: choose one');
    if (typeof values.url === 'string' && !/^https?:\/\/[^/]+/.test(values.url)) throw new UsageError(`--url: ${JSON.stringify(values.url)} is not an http(s) URL`);
    if (typeof values.limit === 'string' && !/^\d+$/.test(values.limit)) throw new UsageError(`--limit: ${JSON.stringify(values.limit)} is not a whole number`);
  } catch (err) {
    io.err.write(`barkeep ${command}: ${(err as Error).message}\n${spec.usage}\n`);
    return 2;
  }
  const url = baseUrl(io.env, values.url as string | undefined);
  const print = (x: unknown) => io.out.write(`${JSON.stringify(x, null, 2)}\n`);
  try {
    switch (command) {
      case 'status': {
        const s = await call(url, 'GET', '/live/status', io.env);
        if (values.json) print(s);
        else io.out.write(formatStatus(url, s));
        return 0;
      }
      case 'orders': {
        const { orders } = await call(url, 'GET', `/orders${query(values, ['symbol', 'since', 'state', 'limit'])}`, io.env);
        if (values.json) print({ orders });
        else if (values.csv) io.out.write(toCsv(orders, ORDER_COLUMNS));
        else if (orders.length === 0) io.out.write('no orders\n');
        else
          io.out.write(
            table([
              ['CREATED', 'SYMBOL', 'SIDE', 'QTY', 'TYPE', 'STATE', 'FILLED', 'AVG', 'STRATEGY', 'REASON'],
              ...orders.map((o: any) => [
                o.created_at,
                o.symbol,
                o.side,
                String(o.qty),
                o.type + (o.limit_price !== null ? ` ${o.limit_price}` : ''),
                o.state,
                String(o.filled_qty),
                px(o.avg_fill_price),
                o.strategy,
                o.reject_reason ? `${o.reason} (${o.reject_reason})` : o.reason,
              ]),
            ]),
          );
        return 0;
      }
      case 'fills': {
        const { fills } = await call(url, 'GET', `/fills${query(values, ['symbol', 'since', 'limit'])}`, io.env);
        if (values.json) print({ fills });
        else if (values.csv) io.out.write(toCsv(fills, FILL_COLUMNS));
        else if (fills.length === 0) io.out.write('no fills\n');
        else
          io.out.write(
            table([
              ['TIME', 'SYMBOL', 'SIDE', 'QTY', 'PRICE', 'COMMISSION', 'STRATEGY', 'ORDER'],
              ...fills.map((f: any) => [f.time, f.symbol, f.side, String(f.qty), px(f.price), money(f.commission), f.strategy, f.client_order_id]),
            ]),
          );
        return 0;
      }
      case 'kill': {
        const s = await call(url, 'POST', '/live/kill', io.env, { flatten: Boolean(values.flatten) });
        if (values.json) print(s);
        else io.out.write(`kill switch engaged${values.flatten ? '; flatten orders sent for every position' : ''}\n${formatStatus(url, s)}`);
        return 0;
      }
      case 'resume': {
        const s = await call(url, 'POST', '/live/resume', io.env, {});
        if (values.json) print(s);
        else io.out.write(`kill switch released\n${formatStatus(url, s)}`);
        return 0;
      }
      case 'config': {
        let settings: Setting[];
        let note = '';
        if (values.local) {
          settings = localSettings(io.env);
          note = '(files and environment only)';
        } else {
          try {
            settings = (await call(url, 'GET', '/config', io.env)).settings;
            note = `(from the server at ${url})`;
          } catch (err) {
            if (!(err instanceof Failure) || err.code !== 'UNREACHABLE') throw err;
            settings = localSettings(io.env);
            note = `(server not reachable at ${url}: files and environment only)`;
          }
        }
        if (values.json) print({ settings });
        else io.out.write(`effective settings ${note}\n${formatSettings(settings)}\n`);
        return 0;
      }
    }
    return 2;
  } catch (err) {
    if (err instanceof Failure || err instanceof ConfigError) {
      io.err.write(`barkeep ${command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function localSettings(env: NodeJS.ProcessEnv): Setting[] {
  const layers = configLayers({ env });
  return settingsWithSources(loadConfigFrom(layers), layers);
}
