/**
 * `GET /bars/{symbol}?bar_size=1Min&limit=100&from=&to=`: the cached bars of one symbol, oldest
 * first, with their source. Without `from`, the newest `limit` bars (up to `to`); with `from`, the
 * first `limit` bars from there on. `from`/`to` take ISO-8601 (New York time when no offset is
 * given), a YYYY-MM-DD New York date, or epoch ms. A bad symbol or parameter gets a 400 naming it.
 * Reads are synchronous LMDB reads on the server's thread: no I/O wait.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { isValidSymbol } from '../../market/bar.ts';
import { BAR_SIZES } from '../../market/bar-size.ts';
import { TIME_BOUND_HELP, barToWire, parseTimeBound, queryBars, type WireBar } from '../../storage/bar-query.ts';
import type { BarReader } from '../../storage/types.ts';

export const MAX_BARS_LIMIT = 10_000;

function timeBound(edge: 'from' | 'to') {
  return z.string().transform((text, ctx) => {
    const ms = parseTimeBound(text, edge);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(text)} is not ${TIME_BOUND_HELP}` });
      return z.NEVER;
    }
    return ms;
  });
}

export const barsQuery = z
  .object({
    bar_size: z.enum(BAR_SIZES, { error: () => `must be one of ${BAR_SIZES.join(', ')}` }).default('1Min'),
    limit: z
      .string()
      .regex(/^\d+$/, `must be a whole number from 1 to ${MAX_BARS_LIMIT}`)
      .transform(Number)
      .pipe(z.number().int().min(1, `must be from 1 to ${MAX_BARS_LIMIT}`).max(MAX_BARS_LIMIT, `must be from 1 to ${MAX_BARS_LIMIT}`))
      .default(100),
    from: timeBound('from').optional(),
    to: timeBound('to').optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { path: ['from'], message: 'is after to' });

export interface BarsResponse {
  symbol: string;
  bar_size: string;
  bars: WireBar[];
}

function badRequest(reply: FastifyReply, field: string, message: string) {
  return reply.code(400).send({ error: 'bad_request', field, message: `${field}: ${message}` });
}

export function registerBarsRoutes(app: FastifyInstance, deps: { bars: BarReader }): void {
  app.get<{ Params: { symbol: string }; Querystring: Record<string, unknown> }>('/bars/:symbol', async (request, reply) => {
    const symbol = String(request.params.symbol ?? '').trim().toUpperCase();
    if (!isValidSymbol(symbol)) {
      return badRequest(reply, 'symbol', `${JSON.stringify(request.params.symbol)} is not a symbol (letters and digits, e.g. QQQ or BRK.B)`);
    }
    const parsed = barsQuery.safeParse(request.query ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = String(issue.path[0] ?? 'query');
      // A repeated parameter arrives as an array: say so rather than "expected string".
      const message = Array.isArray((request.query as Record<string, unknown>)?.[field]) ? 'is given more than once' : issue.message;
      return badRequest(reply, field, message);
    }
    const q = parsed.data;
    const bars = queryBars(deps.bars, { symbol, barSize: q.bar_size, limit: q.limit, from: q.from, to: q.to });
    const body: BarsResponse = { symbol, bar_size: q.bar_size, bars: bars.map(barToWire) };
    return body;
  });
}
