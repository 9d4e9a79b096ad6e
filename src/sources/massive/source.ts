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
import { checkCredential, type VendorClient, vendorClient, type VendorSourceOptions } from '../vendor-client.ts';
import { checkFetchArgs, inStartOrder, silentLogger, type SourceLogger } from '../http.ts';
import { type HistoricalBarSource, SourceError, type SourceStats } from '../types.ts';
import { type AggsPage, MASSIVE_TIMESPAN, massiveBodyError, massiveError, parseAggsPage } from './wire.ts';

export const MASSIVE_DEFAULT_REST_URL = 'https://api.massive.com';

/** rateLimitPerMin defaults to 5 (the free plan). */
export interface MassiveSourceOptions extends VendorSourceOptions {
  apiKey: string;
  /** Default https://api.massive.com. A path prefix is kept (for proxies). */
  restUrl?: string;
}

export class MassiveSource implements HistoricalBarSource {
  readonly name = 'massive' as const;
  readonly apiType = 'Massive API' as const;
  /** One page (the aggregates endpoint returns up to 50 000 bars): ~14 days of 1Min, few requests on a 5/min plan. */
  readonly backfillChunkBars = 20_000;
  /** `status` of the last good page (`OK` or `DELAYED`), for diagnostics. */
  lastStatus: string | undefined;

  private readonly clock: Clock;
  private readonly logger: SourceLogger;
  private readonly vendor: VendorClient;

  constructor(opts: MassiveSourceOptions) {
    checkCredential('massive', 'apiKey', opts.apiKey, 'MASSIVE_API_KEY');
    this.clock = opts.clock;
    this.logger = opts.logger ?? silentLogger;
    this.vendor = vendorClient('massive', opts, {
      urlField: 'restUrl',
      url: opts.restUrl ?? MASSIVE_DEFAULT_REST_URL,
      defaultRateLimitPerMin: 5,
      headers: { authorization: `Bearer ${opts.apiKey}` },
      secrets: [opts.apiKey],
      logger: this.logger,
      policy: (limiter) => ({
        classifyError: (reply, body, url) => massiveError(reply, body, url.pathname),
        checkBody: (body, reply, url) => massiveBodyError(body, reply, url.pathname),
        // No Retry-After at Massive: the window frees 60 s after the oldest request in it.
        resumeAfterRateLimit: () => limiter.windowFreesAt(),
      }),
    });
  }

  async fetchBars(symbol: string, barSize: BarSize, from: number, to: number, signal?: AbortSignal): Promise<Bar[]> {
    checkFetchArgs('massive', symbol, barSize, from, to);
    if (from >= to) return [];
    const { multiplier, timespan } = MASSIVE_TIMESPAN[barSize];
    const first = new URL(this.vendor.base.href);
    first.pathname = `${this.vendor.prefix}/v2/aggs/ticker/${encodeURIComponent(symbol)}/range/${multiplier}/${timespan}/${from}/${to - 1}`;
    first.search = 'adjusted=true&sort=asc&limit=50000';

    const bars: Bar[] = [];
    const seen = new Set<string>();
    let url: URL | undefined = first;
    let pages = 0;
    while (url) {
      seen.add(url.href);
      const { body } = await this.vendor.rest.getJson(url, signal);
      pages++;
      let page: AggsPage;
      try {
        page = parseAggsPage(body, symbol, barSize, from, to, this.clock.now());
        url = page.nextUrl ? this.nextPage(page.nextUrl, seen) : undefined;
      } catch (err) {
        if (err instanceof SourceError) this.vendor.rest.noteError(err);
        throw err;
      }
      this.lastStatus = page.status;
      if (page.malformed > 0) {
        this.vendor.rest.countMalformed(page.malformed);
        this.logger.warn({ source: 'massive', symbol, barSize, skipped: page.malformed, problem: page.firstProblem }, 'malformed bars skipped');
      }
      for (const b of page.bars) bars.push(b);
    }
    this.logger.debug({ source: 'massive', symbol, barSize, from, to, pages, bars: bars.length }, 'bars fetched');
    return inStartOrder(bars);
  }

  stats(): SourceStats {
    return this.vendor.rest.stats();
  }

  async close(): Promise<void> {
    await this.vendor.rest.close();
  }

  /** Validates a `next_url`: same origin as restUrl (the Bearer header goes with it), not seen before. */
  private nextPage(next: string, seen: Set<string>): URL {
    let url: URL;
    try {
      url = new URL(next, this.vendor.base);
    } catch {
      throw new SourceError('massive', 'MALFORMED', 'massive: next_url is not a URL');
    }
    if (url.origin !== this.vendor.base.origin) {
      throw new SourceError('massive', 'MALFORMED', `massive: next_url points to ${url.origin}, not ${this.vendor.base.origin}; not followed, the key would go with it`);
    }
    // The key travels in the header only; a key in the URL would end up in logs.
    url.searchParams.delete('apiKey');
    if (seen.has(url.href)) throw new SourceError('massive', 'MALFORMED', 'massive: next_url repeats an earlier page');
    return url;
  }
}
