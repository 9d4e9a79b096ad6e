/**
 * Massive (ex-Polygon) historical bars over REST: the aggregates endpoint, every `next_url`
 * followed, all requests of this instance paced by one sliding-window limiter
 * (free plan: 5 per minute, pages included).
 *
 * Footguns this adapter handles:
 * - Both ends of Massive's range are inclusive; we ask for [from, to - 1] and keep from <= t < to.
 * - `next_url` does not carry the key; we re-send the Bearer header, and therefore refuse to
 *   follow a `next_url` to any other origin than the configured one.
 * - `status: "DELAYED"` is success; an absent `results` is no data, not an error.
 * - 429 carries no Retry-After: we pause until our own window's oldest request is 60 s old.
 */
import type { Bar } from '../../market/bar.ts';
import type { BarSize } from '../../market/bar-size.ts';
import type { Clock } from '../../market/clock.ts';
import { RateLimiter, type SharedRateGate } from '../rate-limiter.ts';
import { checkFetchArgs, parseVendorUrl, inStartOrder, silentLogger, type SourceLogger, VendorRest } from '../http.ts';
import { type HistoricalBarSource, SourceError, type SourceStats } from '../types.ts';
import { type AggsPage, MASSIVE_TIMESPAN, massiveBodyError, massiveError, parseAggsPage } from './wire.ts';

export const MASSIVE_DEFAULT_REST_URL = 'https://api.massive.com';

export interface MassiveSourceOptions {
  apiKey: string;
  /** Default https://api.massive.com. A path prefix is kept (for proxies). */
  restUrl?: string;
  /** Requests per rolling minute for this key; default 5 (the free plan). Infinity turns pacing off. */
  rateLimitPerMin?: number;
  /** A budget shared with other nodes that use this key (cluster mode). */
  sharedRate?: SharedRateGate;
  clock: Clock;
  /** Headers and body idle timeout per request, ms; default 30 000. */
  timeoutMs?: number;
  /** Retries of transient failures per request; default 4. */
  maxRetries?: number;
  /** First retry delay, doubled each retry; default 1 000 ms. */
  backoffMs?: number;
  /** The rate window; default 60 000 ms. Smaller only in tests. */
  rateWindowMs?: number;
  /** Extra hold per slot against network jitter; default 250 ms. */
  rateGuardMs?: number;
  logger?: SourceLogger;
}

export class MassiveSource implements HistoricalBarSource {
  readonly name = 'massive' as const;
  readonly apiType = 'Massive API' as const;
  /** One page (the aggregates endpoint returns up to 50 000 bars): ~14 days of 1Min, few requests on a 5/min plan. */
  readonly backfillChunkBars = 20_000;
  /** `status` of the last good page (`OK` or `DELAYED`), for diagnostics. */
  lastStatus: string | undefined;

  private readonly base: URL;
  /** restUrl's path without a trailing slash ('' for a bare host). */
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly logger: SourceLogger;
  private readonly rest: VendorRest;
  private readonly limiter: RateLimiter;

  constructor(opts: MassiveSourceOptions) {
    if (typeof opts.apiKey !== 'string' || opts.apiKey.trim() === '') {
      throw new SourceError('massive', 'AUTH', 'massive: apiKey is not configured (set MASSIVE_API_KEY)');
    }
    if (/[\s\x00-\x1f]/.test(opts.apiKey)) {
      throw new SourceError('massive', 'AUTH', 'massive: apiKey contains whitespace or control characters');
    }
    this.base = parseVendorUrl('massive', 'restUrl', opts.restUrl ?? MASSIVE_DEFAULT_REST_URL);
    this.prefix = this.base.pathname.replace(/\/+$/, '');
    const rateLimitPerMin = opts.rateLimitPerMin ?? 5;
    if (!(rateLimitPerMin > 0)) {
      throw new SourceError('massive', 'BAD_REQUEST', `massive: rateLimitPerMin must be > 0, got ${rateLimitPerMin}`);
    }
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.limiter = new RateLimiter({
      limit: rateLimitPerMin,
      windowMs: opts.rateWindowMs ?? 60_000,
      guardMs: opts.rateGuardMs ?? 250,
      clock: opts.clock,
      shared: opts.sharedRate,
    });
    this.rest = new VendorRest({
      source: 'massive',
      clock: opts.clock,
      limiter: this.limiter,
      rateLimitPerMin,
      headers: { authorization: `Bearer ${opts.apiKey}` },
      secrets: [opts.apiKey],
      timeoutMs: opts.timeoutMs ?? 30_000,
      maxRetries: opts.maxRetries ?? 4,
      backoffMs: opts.backoffMs ?? 1_000,
      logger: this.logger,
      policy: {
        classifyError: (reply, body, url) => massiveError(reply, body, url.pathname),
        checkBody: (body, reply, url) => massiveBodyError(body, reply, url.pathname),
        // No Retry-After at Massive: the window frees 60 s after the oldest request in it.
        resumeAfterRateLimit: () => this.limiter.windowFreesAt(),
      },
    });
  }

  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    checkFetchArgs('massive', symbol, barSize, from, to);
    if (from >= to) return [];
    const { multiplier, timespan } = MASSIVE_TIMESPAN[barSize];
    const first = new URL(this.base.href);
    first.pathname = `${this.prefix}/v2/aggs/ticker/${encodeURIComponent(symbol)}/range/${multiplier}/${timespan}/${from}/${to - 1}`;
    first.search = 'adjusted=true&sort=asc&limit=50000';

    const bars: Bar[] = [];
    const seen = new Set<string>();
    let url: URL | undefined = first;
    let pages = 0;
    while (url) {
      seen.add(url.href);
      const { body } = await this.rest.getJson(url, signal);
      pages++;
      let page: AggsPage;
      try {
        page = parseAggsPage(body, symbol, barSize, from, to, this.clock.now());
        url = page.nextUrl ? this.nextPage(page.nextUrl, seen) : undefined;
      } catch (err) {
        if (err instanceof SourceError) this.rest.noteError(err);
        throw err;
      }
      this.lastStatus = page.status;
      if (page.malformed > 0) {
        this.rest.countMalformed(page.malformed);
        this.logger.warn({ source: 'massive', symbol, barSize, skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
      }
      for (const b of page.bars) bars.push(b);
    }
    this.logger.debug({ source: 'massive', symbol, barSize, from, to, pages, bars: bars.length }, 'bars fetched');
    return inStartOrder(bars);
  }

  stats(): SourceStats {
    return this.rest.stats();
  }

  async close(): Promise<void> {
    await this.rest.close();
  }

  /** Validates a `next_url`: same origin as restUrl (the Bearer header goes with it), not seen before. */
  private nextPage(next: string, seen: Set<string>): URL {
    let url: URL;
    try {
      url = new URL(next, this.base);
    } catch {
      throw new SourceError('massive', 'MALFORMED', 'massive: next_url is not a URL');
    }
    if (url.origin !== this.base.origin) {
      throw new SourceError('massive', 'MALFORMED', `massive: next_url points to ${url.origin}, not ${this.base.origin}; not followed, the key would go with it`);
    }
    // The key travels in the header only; a key in the URL would end up in logs.
    url.searchParams.delete('apiKey');
    if (seen.has(url.href)) throw new SourceError('massive', 'MALFORMED', 'massive: next_url repeats an earlier page');
    return url;
  }
}
