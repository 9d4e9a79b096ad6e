/**
 * `GET /dashboard/bars?limit=N`: the page's first load in one request. The server picks what the
 * page shows (the symbols the loop trades and the collector collects, at the loop's bar size, else
 * the collector's) and answers the newest `limit` bars of each in columns of plain numbers (`t` in
 * epoch seconds): read with the store's allocation-free column reads and written as JSON without a
 * per-bar object, so 5 days of minutes for two symbols cost a few milliseconds on the server and a
 * fast JSON.parse in the browser. The page fires it from its <head>, before its scripts load.
 */
import type { FastifyInstance } from 'fastify';
import type { BarSize } from '../../market/bar-size.ts';
import { createBarColumns } from '../../storage/bar-codec.ts';
import type { BarColumns, BarColumnsReader, BarReader } from '../../storage/types.ts';
import { fromZod } from '../errors.ts';
import { dashboardBarsQuery } from '../schemas.ts';

export interface DashboardBarsDeps {
  bars: BarReader;
  /** The symbols the page shows and their bar size. */
  shown(): Promise<{ symbols: string[]; bar_size: BarSize }>;
}

const hasColumns = (r: BarReader): r is BarReader & BarColumnsReader => typeof (r as Partial<BarColumnsReader>).latestNInto === 'function';

/** `[a,b,c]` of the first `n` values; `scale` divides them (ms to s). */
function column(values: Float64Array, n: number, scale = 1): string {
  if (n === 0) return '[]';
  const view = values.subarray(0, n);
  return `[${(scale === 1 ? view : view.map((v) => v / scale)).join(',')}]`;
}

export function registerDashboardBarsRoutes(app: FastifyInstance, deps: DashboardBarsDeps): void {
  let cols: BarColumns | null = null;
  app.get('/dashboard/bars', async (req, reply) => {
    const parsed = dashboardBarsQuery.safeParse(req.query ?? {});
    if (!parsed.success) throw fromZod(parsed.error);
    const limit = parsed.data.limit;
    const { symbols, bar_size } = await deps.shown();
    const parts: string[] = [];
    for (const symbol of symbols) {
      let n: number;
      let c: BarColumns;
      if (hasColumns(deps.bars)) {
        if (!cols || cols.capacity < limit) cols = createBarColumns(limit);
        c = cols;
        n = deps.bars.latestNInto(symbol, bar_size, limit, c);
      } else {
        const list = deps.bars.latestN(symbol, bar_size, limit);
        c = createBarColumns(list.length);
        list.forEach((b, i) => {
          c.start[i] = b.start;
          c.open[i] = b.open;
          c.high[i] = b.high;
          c.low[i] = b.low;
          c.close[i] = b.close;
          c.volume[i] = b.volume;
        });
        n = list.length;
      }
      parts.push(
        `${JSON.stringify(symbol)}:{"t":${column(c.start, n, 1000)},"o":${column(c.open, n)},"h":${column(c.high, n)},"l":${column(c.low, n)},"c":${column(c.close, n)},"v":${column(c.volume, n)}}`,
      );
    }
    reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store');
    return reply.send(`{"bar_size":${JSON.stringify(bar_size)},"symbols":${JSON.stringify(symbols)},"bars":{${parts.join(',')}}}`);
  });
}
