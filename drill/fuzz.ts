/**
 * The HTTP fuzz: requests over every route, with every body shape a hostile or careless client
 * sends (valid, partial, wrong types, unknown fields, deep nesting, too big, not JSON, wrong media
 * type), bad paths (broken percent-encoding, over-long parameters, unknown routes, wrong methods)
 * and every way of presenting a wrong token. Counts answers by status; 0 5xx, every 4xx in barkeep's
 * `{ error, field, message }` shape naming its field, every wrong token refused. The server's heap
 * is read before and after (and around a run of distinct unknown symbols on GET /bars).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Barkeep, startBarkeep } from './barkeep.ts';
import { rng } from './random.ts';

export interface FuzzOptions {
  requests: number;
  unknownSymbols: number;
  timeLimitMs: number;
  seed?: number;
  concurrency?: number;
}

export interface FuzzFigures {
  requests: number;
  by_status: Record<string, number>;
  server_errors: number;
  unshaped_4xx: number;
  wrong_tokens_tried: number;
  wrong_tokens_accepted: number;
  examples: string[];
  heap_before_mib: number;
  heap_after_mib: number;
  rss_before_mib: number;
  rss_after_mib: number;
  unknown_symbols: number;
  heap_per_unknown_symbol_bytes: number;
  duration_s: number;
}

const TOKEN = 'drill-token-0123456789';

interface Req {
  method: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
  wrongToken: boolean;
}

export async function fuzz(opts: FuzzOptions): Promise<FuzzFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-drill-fuzz-'));
  const t0 = Date.now();
  const bk = await startBarkeep({ dir, token: TOKEN, yaml: 'runtime:\n  clock: accelerated\n  clock_speed: 10\n  clock_start: "2026-01-05T15:00:00Z"\n' });
  try {
    const r = rng(opts.seed ?? 12);
    const fig: FuzzFigures = {
      requests: 0,
      by_status: {},
      server_errors: 0,
      unshaped_4xx: 0,
      wrong_tokens_tried: 0,
      wrong_tokens_accepted: 0,
      examples: [],
      heap_before_mib: 0,
      heap_after_mib: 0,
      rss_before_mib: 0,
      rss_after_mib: 0,
      unknown_symbols: 0,
      heap_per_unknown_symbol_bytes: 0,
      duration_s: 0,
    };
    const send = async (q: Req) => {
      let status: number;
      let text = '';
      try {
        const res = await fetch(bk.url + q.path, { method: q.method, headers: q.headers, body: q.body });
        status = res.status;
        text = await res.text();
      } catch (err) {
        status = 599; // the connection failed: counted as a server error
        text = String((err as Error).message);
      }
      fig.requests++;
      fig.by_status[status] = (fig.by_status[status] ?? 0) + 1;
      const note = (why: string) => {
        if (fig.examples.length < 10) fig.examples.push(`${why}: ${q.method} ${q.path.slice(0, 80)} -> ${status} ${text.slice(0, 160)}`);
      };
      if (status >= 500 && !(q.path === '/health' && status === 503)) {
        fig.server_errors++;
        note('5xx');
      }
      if (status >= 400 && status < 500) {
        let body: any;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        const shaped = body && typeof body.error === 'string' && /^[a-z_]+$/.test(body.error) && typeof body.field === 'string' && body.field.length > 0 && typeof body.message === 'string';
        if (!shaped) {
          fig.unshaped_4xx++;
          note('4xx not in shape');
        }
      }
      if (q.wrongToken) {
        fig.wrong_tokens_tried++;
        if (status < 400 || status >= 500 || (status !== 401 && status !== 404 && status !== 400 && status !== 414 && status !== 413 && status !== 415)) {
          if (status !== 401) {
            fig.wrong_tokens_accepted += status < 400 ? 1 : 0;
            if (status < 400) note('wrong token accepted');
          }
        }
      }
    };
    const run = async (n: number, make: () => Req) => {
      const conc = opts.concurrency ?? 8;
      let left = n;
      await Promise.all(
        Array.from({ length: conc }, async () => {
          while (left > 0 && Date.now() - t0 < opts.timeLimitMs) {
            left--;
            await send(make());
          }
        }),
      );
    };

    // Warm up (JIT, caches), then the heap before.
    await run(Math.min(300, opts.requests), () => request(r, false));
    const before = await heap(bk);
    fig.heap_before_mib = before / 2 ** 20;
    fig.rss_before_mib = bk.rss() / 2 ** 20;
    await run(opts.requests, () => request(r, true));
    // Distinct unknown symbols: no per-symbol state may stay behind.
    const h0 = await heap(bk);
    let k = 0;
    await run(opts.unknownSymbols, () => ({ method: 'GET', path: `/bars/Z${(k++).toString(36).toUpperCase()}`, headers: {}, wrongToken: false }));
    fig.unknown_symbols = k;
    const h1 = await heap(bk);
    fig.heap_per_unknown_symbol_bytes = k ? Math.max(0, (h1 - h0) / k) : 0;
    fig.heap_after_mib = (await heap(bk)) / 2 ** 20;
    fig.rss_after_mib = bk.rss() / 2 ** 20;
    fig.duration_s = (Date.now() - t0) / 1000;
    return fig;
  } finally {
    await bk.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The server's heap in use, from /metrics (read a few times; the smallest is the closest to live data). */
async function heap(bk: Barkeep): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const m = await bk.get('/metrics');
    const v = /^barkeep_nodejs_heap_size_used_bytes (\S+)/m.exec(m.text);
    if (v) best = Math.min(best, Number(v[1]));
    await new Promise((r) => setTimeout(r, 100));
  }
  // A renamed metric must stop the drill, not turn the memory check into Infinity.
  if (!Number.isFinite(best)) throw new Error('drill fuzz: /metrics has no barkeep_nodejs_heap_size_used_bytes');
  return best;
}

type R = ReturnType<typeof rng>;

const SYMBOLS = ['QQQ', 'SPY', 'BRK.B', 'qqq', '', ' ', 'A'.repeat(16), 'A'.repeat(150), '%00', '..', 'SPY/..', '\u00e9', 'Q Q', '<script>', 'constructor', '__proto__', '1234'];
const JUNK: unknown[] = [null, true, 0, -1, 1e308, 'x', '', [], {}, [1, 2], { a: 1 }, 'constructor', '__proto__', 'toString', '1Min', 'paper'];

function nested(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

function bodyShape(r: R, valid: unknown): { body?: string; type?: string } {
  switch (r.int(12)) {
    case 0:
      return {};
    case 1:
      return { body: '', type: 'application/json' };
    case 2:
      return { body: JSON.stringify(valid).slice(0, Math.max(1, r.int(JSON.stringify(valid).length))), type: 'application/json' };
    case 3:
      return { body: 'not json at all', type: 'application/json' };
    case 4:
      return { body: JSON.stringify(r.pick(JUNK)), type: 'application/json' };
    case 5:
      return { body: JSON.stringify({ ...(valid as object), unknown_field: 1 }), type: 'application/json' };
    case 6:
      return { body: JSON.stringify({ pad: 'x'.repeat(20_000 + r.int(100_000)) }), type: 'application/json' };
    case 7:
      return { body: JSON.stringify(valid), type: r.pick(['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/json; charset=latin1']) };
    default:
      return { body: JSON.stringify(valid), type: 'application/json' };
  }
}

function mutate(r: R, obj: Record<string, unknown>): Record<string, unknown> {
  const out = { ...obj };
  for (const k of Object.keys(out)) if (r.int(3) === 0) out[k] = r.pick(JUNK);
  return out;
}

function request(r: R, withAuthFaults: boolean): Req {
  const auth = (): { headers: Record<string, string>; wrong: boolean } => {
    if (!withAuthFaults || r.int(4) !== 0) return { headers: { authorization: `${r.pick(['Bearer', 'bearer', 'BEARER'])} ${TOKEN}` }, wrong: false };
    const wrong = r.pick([
      {},
      { authorization: TOKEN },
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` },
      { authorization: 'Bearer ' },
      { authorization: `Token ${TOKEN}` },
      { 'x-api-key': TOKEN },
      { cookie: `token=${TOKEN}` },
      { authorization: `Bearer  ${TOKEN} extra` },
    ]) as Record<string, string>;
    return { headers: wrong, wrong: true };
  };
  const kind = r.int(20);
  if (kind < 6) {
    // GET /bars with every parameter shape.
    const sym = r.int(3) === 0 ? r.pick(SYMBOLS) : r.pick(['QQQ', 'SPY']);
    const q = new URLSearchParams();
    if (r.int(2)) q.set('bar_size', r.pick(['1Min', '5Min', '1Day', '2Min', '', '1min', 'constructor']));
    if (r.int(2)) q.set('limit', r.pick(['1', '100', '10000', '10001', '0', '-1', 'abc', '1e3', '99999999999999999999']));
    if (r.int(3) === 0) q.set('from', r.pick(['2026-01-05', '2026-13-45', 'yesterday', '1767625200000', '2026-01-05T10:00:00', '']));
    if (r.int(3) === 0) q.set('to', r.pick(['2026-01-06', '2020-01-01', 'x']));
    if (r.int(8) === 0) q.append('limit', '5');
    const enc = r.int(10) === 0 ? sym : encodeURIComponent(sym);
    return { method: 'GET', path: `/bars/${enc}${q.size ? `?${q}` : ''}`, headers: {}, wrongToken: false };
  }
  if (kind < 9) {
    const path = r.pick([
      '/health',
      '/actors',
      '/metrics',
      '/data-collector/status',
      '/live/status',
      '/orders',
      '/positions',
      '/openapi.json',
      '/backtests',
      `/backtests/${encodeURIComponent(r.pick(SYMBOLS))}`,
      `/orders?${r.pick(['symbol', 'since', 'state', 'limit'])}=${encodeURIComponent(String(r.pick(JUNK)))}`,
      `/fills?${r.pick(['symbol', 'since', 'limit'])}=${encodeURIComponent(String(r.pick(JUNK)))}`,
      `/feed/switches${r.int(2) ? `?symbol=${encodeURIComponent(r.pick(SYMBOLS))}` : ''}`,
      `/dashboard/bars${r.int(2) ? `?limit=${r.pick(['1', '720', '10000', '10001', '0', '-1', 'abc', ''])}` : ''}`,
    ]);
    return { method: 'GET', path, headers: {}, wrongToken: false };
  }
  if (kind < 11) {
    // Bad paths and methods.
    const path = r.pick([
      '/bars/%E0%A4%A',
      '/bars/%',
      `/bars/${'A'.repeat(101 + r.int(5000))}`,
      `/nope/${'x'.repeat(r.int(3000))}`,
      '/live/start/',
      '/LIVE/STATUS',
      '/bars/',
      '/actors/%ZZ/restart',
      `/actors/${'n'.repeat(200)}/restart`,
      '/../../etc/passwd',
      '/live/status?x=%',
    ]);
    const method = r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
    const a = auth();
    return { method, path, headers: a.headers, wrongToken: false };
  }
  // POSTs with every body shape.
  const a = auth();
  const route = r.pick(['/data-collector/start', '/data-collector/stop', '/live/start', '/live/stop', '/live/kill', '/live/resume', '/actors/trader/restart', '/actors/constructor/restart']);
  let valid: Record<string, unknown> = {};
  if (route === '/data-collector/start') valid = { symbols: ['QQQ', 'SPY'], bar_size: '1Min' };
  if (route === '/live/kill') valid = { flatten: r.int(2) === 0 };
  if (route === '/live/start') {
    valid = { symbols: ['QQQ', 'SPY'], strategy: r.pick(['sma-crossover', 'mean-reversion', 'constructor', 'toString', '__proto__', 'nope']), strategy_params: {} };
    const p = r.int(6);
    if (p === 0) valid.strategy_params = JSON.parse(nested(50));
    if (p === 1) valid.strategy_params = { fast: r.pick(JUNK), slow: r.pick(JUNK) };
    if (p === 2) valid.strategy_params = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`k${i}`, i]));
    if (p === 3) valid.strategy_params = r.pick(JUNK);
  }
  if (r.int(3) === 0) valid = mutate(r, valid);
  let shape = bodyShape(r, valid);
  if (route === '/live/start' && r.int(10) === 0) shape = { body: `{"strategy":"sma-crossover","strategy_params":${nested(2000 + r.int(20_000))}}`, type: 'application/json' };
  const headers: Record<string, string> = { ...a.headers, ...(shape.type ? { 'content-type': shape.type } : {}) };
  return { method: 'POST', path: route, body: shape.body, headers, wrongToken: a.wrong };
}
