/**
 * `barkeep bars SYMBOL [--bar-size 1Min] [--limit 20] [--from T] [--to T] [--json]`: shows the
 * cached bars of one symbol, oldest first, as a table (time in New York and UTC, OHLCV, source)
 * or as the HTTP API's JSON. Reads the LMDB store directly; works while the server runs.
 */
import { DateTime } from 'luxon';
import { MARKET_ZONE } from '../market/calendar.ts';
import type { Bar } from '../market/bar.ts';
import { BAR_SIZES, type BarSize } from '../market/bar-size.ts';
import { TIME_BOUND_HELP, barToWire, parseTimeBound, queryBars } from '../storage/bar-query.ts';
import { openStorage, storageExists, storagePath } from '../storage/storage.ts';
import { parseCommandArgs, symbolAndBarSize, UsageError } from './args.ts';

export interface BarsCommandIo {
  dataDir: string;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

const USAGE = `usage: barkeep bars SYMBOL [--bar-size ${BAR_SIZES.join('|')}] [--limit N] [--from TIME] [--to TIME] [--json]
  --bar-size  bar size (default 1Min)
  --limit     at most N bars, 1..10000 (default 20)
  --from      first bar start to show; TIME is ${TIME_BOUND_HELP}
  --to        last bar start to show (same forms; a date means through its end)
  --json      print {"symbol", "bar_size", "bars": [...]} as GET /bars/{symbol} does
Without --from: the newest bars (up to --to). With --from: the first bars from there on.`;

const MAX_LIMIT = 10_000;

interface Parsed {
  symbol: string;
  barSize: BarSize;
  limit: number;
  from?: number;
  to?: number;
  json: boolean;
}

function parse(argv: string[]): Parsed | 'help' {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      'bar-size': { type: 'string' },
      limit: { type: 'string', short: 'n' },
      from: { type: 'string' },
      to: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return 'help';
  const { symbol, barSize } = symbolAndBarSize(positionals, values['bar-size']);
  const limitText = values.limit ?? '20';
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new UsageError(`--limit: ${JSON.stringify(limitText)} is not a whole number from 1 to ${MAX_LIMIT}`);
  const bound = (name: 'from' | 'to'): number | undefined => {
    const text = values[name];
    if (text === undefined) return undefined;
    const ms = parseTimeBound(text, name);
    if (ms === undefined) throw new UsageError(`--${name}: ${JSON.stringify(text)} is not ${TIME_BOUND_HELP}`);
    return ms;
  };
  const from = bound('from');
  const to = bound('to');
  if (from !== undefined && to !== undefined && from > to) throw new UsageError(`--from: it is after --to (${new Date(from).toISOString()} > ${new Date(to).toISOString()})`);
  return { symbol, barSize, limit, from, to, json: values.json ?? false };
}

export async function barsCommand(argv: string[], io: BarsCommandIo): Promise<number> {
  let q: Parsed | 'help';
  try {
    q = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err.write(`barkeep bars: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (q === 'help') {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  const where = storagePath(io.dataDir);
  let bars: Bar[] = [];
  // An absent store holds no bars: say so instead of creating one.
  if (storageExists(where)) {
    const storage = openStorage({ path: where });
    try {
      bars = queryBars(storage.bars, q);
    } finally {
      await storage.close();
    }
  }
  if (q.json) {
    io.out.write(`${JSON.stringify({ symbol: q.symbol, bar_size: q.barSize, bars: bars.map(barToWire) }, null, 2)}\n`);
  } else if (bars.length === 0) {
    io.out.write(`no ${q.barSize} bars cached for ${q.symbol}${q.from !== undefined || q.to !== undefined ? ' in that range' : ''} (store: ${where})\n`);
  } else {
    io.out.write(formatTable(q.symbol, q.barSize, bars));
  }
  // No bars is a failure a script can test for (the message or the empty list says which).
  return bars.length === 0 ? 1 : 0;
}

function num(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toFixed(4)));
}

/** Cents always, sub-penny digits when the price has them. */
function price(x: number): string {
  return x.toFixed(4).replace(/0{1,2}$/, '');
}

function formatTable(symbol: string, barSize: BarSize, bars: Bar[]): string {
  const head = ['time (New York)', 'time (UTC)', 'open', 'high', 'low', 'close', 'volume', 'source'];
  const rows = bars.map((b) => [
    DateTime.fromMillis(b.start, { zone: MARKET_ZONE }).toFormat('yyyy-MM-dd HH:mm ZZZZ'),
    DateTime.fromMillis(b.start, { zone: 'utc' }).toFormat("yyyy-MM-dd HH:mm'Z'"),
    price(b.open),
    price(b.high),
    price(b.low),
    price(b.close),
    num(b.volume),
    b.source,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = (i: number) => i >= 2 && i <= 6;
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const title = `${symbol} ${barSize}: ${bars.length} bar${bars.length === 1 ? '' : 's'}, oldest first`;
  return `${[title, line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')}\n`;
}
