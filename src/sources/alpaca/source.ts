/**
 * Alpaca Market Data v2 historical bars over REST: `/v2/stocks/{symbol}/bars`, every
 * `next_page_token` followed, all requests paced by one sliding-window limiter (free plan: 200 per
 * minute) that also obeys the vendor's own count: `X-RateLimit-Remaining: 0` pauses every request
 * of this source until `X-RateLimit-Reset`.
 *
 * Footguns this adapter handles:
 * - `feed` is always sent (default `iex`): the server default is `sip`, which a free key may only
 *   query for data older than 15 minutes (403 otherwise).
 * - Authentication failures come as 403, not 401, and look the same as a plan without the feed;
 *   the error says both.
 * - `end` is inclusive; we send to - 1 ms and keep from <= t < to.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { Clock } from '../../market/clock.ts';
import { checkFetchArgs, parseVendorUrl, headerValue, inStartOrder, silentLogger, type SourceLogger, type VendorReply, VendorRest } from '../http.ts';
import { RateLimiter, type SharedRateGate } from '../rate-limiter.ts';
import { type HistoricalBarSource, SourceError, type SourceStats } from '../types.ts';
import { type MultiBarsPage, parseMultiBarsPage } from './multi-bars.ts';
import { ALPACA_FEEDS, type AlpacaFeed, type BarsPage, alpacaError, alpacaTimeframe, isAlpacaFeed, parseBarsPage } from './wire.ts';

export const ALPACA_DEFAULT_DATA_URL = 'https://data.alpaca.markets';
/** How old SIP data must be for a plan without real-time SIP (plus a minute of margin). */
const SIP_DELAY_MS = 16 * 60_000;

export interface AlpacaSourceOptions {
  keyId: string;
  secretKey: string;
  /** Default https://data.alpaca.markets. */
  dataUrl?: string;
  /** Default `iex` (the free plan's real-time feed). `delayed_sip`: sip history ending 16 min ago. */
  feed?: AlpacaFeed;
  /** Requests per rolling minute; default 200 (the free plan). Infinity turns pacing off. */
  rateLimitPerMin?: number;
  /** A budget shared with other nodes that use this key (cluster mode). */
  sharedRate?: SharedRateGate;
  clock: Clock;
  timeoutMs?: number;
  maxRetries?: number;
  backoffMs?: number;
  rateWindowMs?: number;
  rateGuardMs?: number;
  logger?: SourceLogger;
}

/** The vendor's view of our budget, from the last reply's X-RateLimit-* headers. */
export interface AlpacaRateLimitState {
  limit?: number;
  remaining?: number;
  /** Epoch ms when the vendor's window resets. */
  resetAt?: number;
}

export class AlpacaSource implements HistoricalBarSource {
  readonly name = 'alpaca' as const;
  readonly apiType = 'Alpaca API' as const;
  readonly feed: AlpacaFeed;
  /** Last X-RateLimit-* headers seen, for diagnostics. */
  lastRateLimit: AlpacaRateLimitState | undefined;

  private readonly base: URL;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly logger: SourceLogger;
  private readonly limiter: RateLimiter;
  private readonly rest: VendorRest;

  constructor(opts: AlpacaSourceOptions) {
    for (const [field, value, env] of [
      ['keyId', opts.keyId, 'APCA_API_KEY_ID'],
      ['secretKey', opts.secretKey, 'APCA_API_SECRET_KEY'],
    ] as const) {
      if (typeof value !== 'string' || value.trim() === '') {
        throw new SourceError('alpaca', 'AUTH', `alpaca: ${field} is not configured (set ${env})`);
      }
      if (/[\s\x00-\x1f]/.test(value)) throw new SourceError('alpaca', 'AUTH', `alpaca: ${field} contains whitespace or control characters`);
    }
    const feed = opts.feed ?? 'iex';
    if (!isAlpacaFeed(feed)) {
      throw new SourceError('alpaca', 'BAD_REQUEST', `alpaca: feed ${JSON.stringify(feed)} is not one of ${ALPACA_FEEDS.join(', ')}`);
    }
    this.feed = feed;
    this.base = parseVendorUrl('alpaca', 'dataUrl', opts.dataUrl ?? ALPACA_DEFAULT_DATA_URL);
    this.prefix = this.base.pathname.replace(/\/+$/, '');
    const rateLimitPerMin = opts.rateLimitPerMin ?? 200;
    if (!(rateLimitPerMin > 0)) {
      throw new SourceError('alpaca', 'BAD_REQUEST', `alpaca: rateLimitPerMin must be > 0, got ${rateLimitPerMin}`);
    }
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    const windowMs = opts.rateWindowMs ?? 60_000;
    this.limiter = new RateLimiter({ limit: rateLimitPerMin, windowMs, guardMs: opts.rateGuardMs ?? 250, clock: opts.clock, shared: opts.sharedRate });
    this.rest = new VendorRest({
      source: 'alpaca',
      clock: opts.clock,
      limiter: this.limiter,
      rateLimitPerMin,
      headers: { 'APCA-API-KEY-ID': opts.keyId, 'APCA-API-SECRET-KEY': opts.secretKey },
      secrets: [opts.keyId, opts.secretKey],
      timeoutMs: opts.timeoutMs ?? 30_000,
      maxRetries: opts.maxRetries ?? 4,
      backoffMs: opts.backoffMs ?? 1_000,
      logger: this.logger,
      policy: {
        classifyError: (reply, body, url) => alpacaError(reply, body, url.pathname),
        observe: (reply) => this.observe(reply, windowMs),
        resumeAfterRateLimit: () => {
          const reset = this.lastRateLimit?.resetAt;
          return reset !== undefined && reset > this.clock.now() ? reset : this.limiter.windowFreesAt();
        },
      },
    });
  }

  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    checkFetchArgs('alpaca', symbol, barSize, from, to);
    // SIP history newer than 15 minutes needs a paid plan: the delayed feed stops short of it.
    if (this.feed === 'delayed_sip') to = Math.min(to, this.clock.now() - SIP_DELAY_MS);
    if (from >= to) return [];
    const restFeed = this.feed === 'delayed_sip' ? 'sip' : this.feed;
    const bars: Bar[] = [];
    const tokens = new Set<string>();
    let token: string | undefined;
    let pages = 0;
    do {
      const url = new URL(this.base.href);
      url.pathname = `${this.prefix}/v2/stocks/${encodeURIComponent(symbol)}/bars`;
      const q = url.searchParams;
      q.set('timeframe', alpacaTimeframe(barSize));
      q.set('start', new Date(from).toISOString());
      q.set('end', new Date(to - 1).toISOString());
      q.set('limit', '10000');
      q.set('feed', restFeed);
      q.set('adjustment', 'raw');
      q.set('sort', 'asc');
      if (token) q.set('page_token', token);
      const { body } = await this.rest.getJson(url, signal);
      pages++;
      let page: BarsPage;
      try {
        page = parseBarsPage(body, symbol, barSize, from, to, this.clock.now());
        if (page.nextPageToken !== undefined && tokens.has(page.nextPageToken)) {
          throw new SourceError('alpaca', 'MALFORMED', 'alpaca: next_page_token repeats an earlier page');
        }
      } catch (err) {
        if (err instanceof SourceError) this.rest.noteError(err);
        throw err;
      }
      if (page.malformed > 0) {
        this.rest.countMalformed(page.malformed);
        this.logger.warn({ source: 'alpaca', symbol, barSize, skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
      }
      for (const b of page.bars) bars.push(b);
      token = page.nextPageToken;
      if (token !== undefined) tokens.add(token);
    } while (token !== undefined);
    this.logger.debug({ source: 'alpaca', symbol, barSize, from, to, pages, bars: bars.length }, 'bars fetched');
    return inStartOrder(bars);
  }

  /**
   * Complete bars of many symbols over [from, to) with `GET /v2/stocks/bars?symbols=...`, every page
   * followed (multi-bars.ts). Every asked symbol has an entry, empty when it had no bars.
   */
  async fetchBarsMulti(symbols: string[], barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Map<string, Bar[]>> {
    for (const s of symbols) checkFetchArgs('alpaca', s, barSize, from, to);
    const out = new Map<string, Bar[]>(symbols.map((s) => [s, []]));
    if (this.feed === 'delayed_sip') to = Math.min(to, this.clock.now() - SIP_DELAY_MS);
    if (from >= to || symbols.length === 0) return out;
    const asked = new Set(symbols);
    const tokens = new Set<string>();
    let token: string | undefined;
    do {
      const url = new URL(this.base.href);
      url.pathname = `${this.prefix}/v2/stocks/bars`;
      const q = url.searchParams;
      q.set('symbols', symbols.join(','));
      q.set('timeframe', alpacaTimeframe(barSize));
      q.set('start', new Date(from).toISOString());
      q.set('end', new Date(to - 1).toISOString());
      q.set('limit', '10000');
      q.set('feed', this.feed === 'delayed_sip' ? 'sip' : this.feed);
      q.set('adjustment', 'raw');
      q.set('sort', 'asc');
      if (token) q.set('page_token', token);
      const { body } = await this.rest.getJson(url, signal);
      let page: MultiBarsPage;
      try {
        page = parseMultiBarsPage(body, asked, barSize, from, to, this.clock.now());
        if (page.nextPageToken !== undefined && tokens.has(page.nextPageToken)) {
          throw new SourceError('alpaca', 'MALFORMED', 'alpaca: next_page_token repeats an earlier page');
        }
      } catch (err) {
        if (err instanceof SourceError) this.rest.noteError(err);
        throw err;
      }
      if (page.malformed > 0) {
        this.rest.countMalformed(page.malformed);
        this.logger.warn({ source: 'alpaca', skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
      }
      for (const [symbol, bars] of page.bars) out.get(symbol)!.push(...bars);
      token = page.nextPageToken;
      if (token !== undefined) tokens.add(token);
    } while (token !== undefined);
    for (const [symbol, bars] of out) out.set(symbol, inStartOrder(bars));
    return out;
  }

  stats(): SourceStats {
    return this.rest.stats();
  }

  async close(): Promise<void> {
    await this.rest.close();
  }

  /** Reads X-RateLimit-*; a spent budget pauses the limiter until the vendor's reset. */
  private observe(reply: VendorReply, windowMs: number): void {
    const num = (name: string) => {
      const v = headerValue(reply.headers, name);
      const n = v === undefined ? NaN : Number(v);
      return Number.isFinite(n) ? n : undefined;
    };
    const limit = num('x-ratelimit-limit');
    const remaining = num('x-ratelimit-remaining');
    const reset = num('x-ratelimit-reset');
    if (limit === undefined && remaining === undefined && reset === undefined) return;
    const now = this.clock.now();
    // Reset is epoch seconds on the vendor's clock; never trust it to pause us beyond two windows.
    const resetAt = reset === undefined ? undefined : Math.min(reset * 1000, now + 2 * windowMs);
    this.lastRateLimit = { limit, remaining, resetAt };
    if (remaining === 0) {
      const until = resetAt !== undefined && resetAt > now ? resetAt : now + windowMs;
      this.logger.info({ source: 'alpaca', until }, 'vendor rate budget spent, pausing');
      this.limiter.pauseUntil(until);
    }
  }
}
