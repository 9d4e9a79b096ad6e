/**
 * The fake's `GET /v2/stocks/bars?symbols=A,B,...` (docs/market-data.md, "Alpaca market data v2" › Historical bars): bars ordered by
 * symbol (as listed, sorted) then time, `limit` counting all symbols together, and an opaque
 * `next_page_token` that can fall in the middle of one symbol's bars.
 */

export interface MultiQuery {
  symbols: string[];
  start: number;
  end: number;
  limit: number;
  pageSize: number;
  token: string | null;
  /** One symbol's wire bars with start <= t <= end, in time order. */
  barsOf(symbol: string): unknown[];
}

/** The page body, or an error status and body. */
export function multiBarsPage(q: MultiQuery): { status: number; body: unknown } {
  const symbols = [...new Set(q.symbols)].sort();
  let symIdx = 0;
  let offset = 0;
  if (q.token) {
    const m = /^(\d+):(\d+)$/.exec(Buffer.from(q.token, 'base64').toString());
    if (!m) return { status: 400, body: { code: 40010001, message: 'invalid page token' } };
    symIdx = Number(m[1]);
    offset = Number(m[2]);
  }
  const room = Math.min(q.limit, q.pageSize);
  const bars: Record<string, unknown[]> = {};
  let taken = 0;
  let next: string | null = null;
  for (; symIdx < symbols.length; symIdx++, offset = 0) {
    const all = q.barsOf(symbols[symIdx]);
    if (offset >= all.length) continue;
    const slice = all.slice(offset, offset + (room - taken));
    if (slice.length > 0) (bars[symbols[symIdx]] ??= []).push(...slice);
    taken += slice.length;
    if (offset + slice.length < all.length) {
      next = Buffer.from(`${symIdx}:${offset + slice.length}`).toString('base64');
      break;
    }
    if (taken >= room) {
      // Full page at a symbol's end: the next page starts at the next symbol that has bars.
      for (let j = symIdx + 1; j < symbols.length; j++) {
        if (q.barsOf(symbols[j]).length > 0) {
          next = Buffer.from(`${j}:0`).toString('base64');
          break;
        }
      }
      break;
    }
  }
  return { status: 200, body: { bars, next_page_token: next, currency: 'USD' } };
}
