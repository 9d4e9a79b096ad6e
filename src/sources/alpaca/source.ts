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
import { checkFetchArgs, headerValue, inStartOrder, silentLogger, type SourceLogger, type VendorReply } from '../http.ts';
import { checkCredential, type VendorClient, vendorClient, type VendorSourceOptions } from '../vendor-client.ts';
import { type HistoricalBarSource, SourceError, type SourceStats } from '../types.ts';
import { type MultiBarsPage, parseMultiBarsPage } from './multi-bars.ts';
import { ALPACA_FEEDS, type AlpacaFeed, alpacaError, alpacaTimeframe, isAlpacaFeed, parseBarsPage } from './wire.ts';

export const ALPACA_DEFAULT_DATA_URL = 'https://data.alpaca.markets';
/** How old SIP data must be for a plan without real-time SIP (plus a minute of margin). */
const SIP_DELAY_MS = 16 * 60_000;

/** rateLimitPerMin defaults to 200 (the free plan). */
export interface AlpacaSourceOptions extends VendorSourceOptions {
  keyId: string;
  secretKey: string;
  /** Default https://data.alpaca.markets. */
  dataUrl?: string;
  /** Default `iex` (the free plan's real-time feed). `delayed_sip`: sip history ending 16 min ago. */
  feed?: AlpacaFeed;
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

  private readonly clock: Clock;
  private readonly logger: SourceLogger;
  private readonly vendor: VendorClient;

  constructor(opts: AlpacaSourceOptions) {
    checkCredential('alpaca', 'keyId', opts.keyId, 'APCA_API_KEY_ID');
    checkCredential('alpaca', 'secretKey', opts.secretKey, 'APCA_API_SECRET_KEY');
    const feed = opts.feed ?? 'iex';
    if (!isAlpacaFeed(feed)) {
      throw new SourceError('alpaca', 'BAD_REQUEST', `alpaca: feed ${JSON.stringify(feed)} is not one of ${ALPACA_FEEDS.join(', ')}`);
    }
    this.feed = feed;
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.vendor = vendorClient('alpaca', opts, {
      urlField: 'dataUrl',
      url: opts.dataUrl ?? ALPACA_DEFAULT_DATA_URL,
      defaultRateLimitPerMin: 200,
      headers: { 'APCA-API-KEY-ID': opts.keyId, 'APCA-API-SECRET-KEY': opts.secretKey },
      secrets: [opts.keyId, opts.secretKey],
      logger: this.logger,
      policy: (limiter, windowMs) => ({
        classifyError: (reply, body, url) => alpacaError(reply, body, url.pathname),
        observe: (reply) => this.observe(reply, windowMs),
        resumeAfterRateLimit: () => {
          const reset = this.lastRateLimit?.resetAt;
          return reset !== undefined && reset > this.clock.now() ? reset : limiter.windowFreesAt();
        },
      }),
    });
  }

  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    checkFetchArgs('alpaca', symbol, barSize, from, to);
    // SIP history newer than 15 minutes needs a paid plan: the delayed feed stops short of it.
    if (this.feed === 'delayed_sip') to = Math.min(to, this.clock.now() - SIP_DELAY_MS);
    if (from >= to) return [];
    const bars: Bar[] = [];
    let pages = 0;
    await this.eachPage(
      `/v2/stocks/${encodeURIComponent(symbol)}/bars`,
      undefined,
      barSize,
      from,
      to,
      (body, receivedAt) => parseBarsPage(body, symbol, barSize, from, to, receivedAt),
      (page) => {
        pages++;
        if (page.malformed > 0) {
          this.logger.warn({ source: 'alpaca', symbol, barSize, skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
        }
        for (const b of page.bars) bars.push(b);
      },
      signal,
    );
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
    await this.eachPage(
      '/v2/stocks/bars',
      symbols,
      barSize,
      from,
      to,
      (body, receivedAt): MultiBarsPage => parseMultiBarsPage(body, asked, barSize, from, to, receivedAt),
      (page) => {
        if (page.malformed > 0) this.logger.warn({ source: 'alpaca', skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
        for (const [symbol, bars] of page.bars) out.get(symbol)!.push(...bars);
      },
      signal,
    );
    for (const [symbol, bars] of out) out.set(symbol, inStartOrder(bars));
    return out;
  }

  /**
   * GETs `path` page by page, `next_page_token` followed until there is none (a token seen before is
   * MALFORMED, not a loop), each page read by `parse` and handed to `onPage`. The query is the same
   * for one symbol and many: `feed` always sent (delayed_sip reads sip history), `end` inclusive.
   */
  private async eachPage<P extends { malformed: number; nextPageToken?: string }>(
    path: string,
    symbols: string[] | undefined,
    barSize: BarSize,
    from: number,
    to: number,
    parse: (body: unknown, receivedAt: number) => P,
    onPage: (page: P) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const tokens = new Set<string>();
    let token: string | undefined;
    do {
      const url = new URL(this.vendor.base.href);
      url.pathname = `${this.vendor.prefix}${path}`;
      const q = url.searchParams;
      if (symbols) q.set('symbols', symbols.join(','));
      q.set('timeframe', alpacaTimeframe(barSize));
      q.set('start', new Date(from).toISOString());
      q.set('end', new Date(to - 1).toISOString());
      q.set('limit', '10000');
      q.set('feed', this.feed === 'delayed_sip' ? 'sip' : this.feed);
      q.set('adjustment', 'raw');
      q.set('sort', 'asc');
      if (token) q.set('page_token', token);
      const { body } = await this.vendor.rest.getJson(url, signal);
      let page: P;
      try {
        page = parse(body, this.clock.now());
        if (page.nextPageToken !== undefined && tokens.has(page.nextPageToken)) {
          throw new SourceError('alpaca', 'MALFORMED', 'alpaca: next_page_token repeats an earlier page');
        }
      } catch (err) {
        if (err instanceof SourceError) this.vendor.rest.noteError(err);
        throw err;
      }
      if (page.malformed > 0) this.vendor.rest.countMalformed(page.malformed);
      onPage(page);
      token = page.nextPageToken;
      if (token !== undefined) tokens.add(token);
    } while (token !== undefined);
  }

  stats(): SourceStats {
    return this.vendor.rest.stats();
  }

  async close(): Promise<void> {
    await this.vendor.rest.close();
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
      this.vendor.limiter.pauseUntil(until);
    }
  }
}
