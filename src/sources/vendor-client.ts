/**
 * What the Massive and Alpaca REST sources are both built from: their common options, the check of a
 * configured credential, and the rate limiter plus HTTP client (http.ts) each wraps.
 */
import type { Clock } from '../market/clock.ts';
import { parseVendorUrl, type SourceLogger, type VendorPolicy, VendorRest } from './http.ts';
import { RateLimiter, type SharedRateGate } from './rate-limiter.ts';
import { SourceError, type SourceName } from './types.ts';

/** What every REST bar source (Massive, Alpaca) takes besides its credentials and host. */
export interface VendorSourceOptions {
  /** Requests per rolling minute for this key (the plan's); Infinity turns pacing off. Each source names its default. */
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

/** A credential from the config: refused as AUTH when missing or when it holds whitespace or control characters. */
export function checkCredential(source: SourceName, field: string, value: unknown, env: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new SourceError(source, 'AUTH', `${source}: ${field} is not configured (set ${env})`);
  }
  if (/[\s\x00-\x1f]/.test(value)) throw new SourceError(source, 'AUTH', `${source}: ${field} contains whitespace or control characters`);
}

/** What a REST bar source is built on: its base URL and path prefix, its rate limiter and its HTTP client. */
export interface VendorClient {
  base: URL;
  /** The base URL's path without a trailing slash ('' for a bare host). */
  prefix: string;
  limiter: RateLimiter;
  rest: VendorRest;
  windowMs: number;
}

/**
 * Builds a source's VendorClient from the options every REST source takes (defaults: 60 s window,
 * 250 ms guard, 30 s timeout, 4 retries from 1 s) and what is the vendor's own: where, which
 * credentials, and how its replies read (`policy`, given the limiter).
 */
export function vendorClient(
  source: SourceName,
  opts: VendorSourceOptions,
  vendor: {
    urlField: string;
    url: string;
    defaultRateLimitPerMin: number;
    headers: Record<string, string>;
    secrets: string[];
    logger: SourceLogger;
    policy: (limiter: RateLimiter, windowMs: number) => VendorPolicy;
  },
): VendorClient {
  const base = parseVendorUrl(source, vendor.urlField, vendor.url);
  const rateLimitPerMin = opts.rateLimitPerMin ?? vendor.defaultRateLimitPerMin;
  if (!(rateLimitPerMin > 0)) {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: rateLimitPerMin must be > 0, got ${rateLimitPerMin}`);
  }
  const windowMs = opts.rateWindowMs ?? 60_000;
  const limiter = new RateLimiter({ limit: rateLimitPerMin, windowMs, guardMs: opts.rateGuardMs ?? 250, clock: opts.clock, shared: opts.sharedRate });
  const rest = new VendorRest({
    source,
    clock: opts.clock,
    limiter,
    rateLimitPerMin,
    headers: vendor.headers,
    secrets: vendor.secrets,
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxRetries: opts.maxRetries ?? 4,
    backoffMs: opts.backoffMs ?? 1_000,
    logger: vendor.logger,
    policy: vendor.policy(limiter, windowMs),
  });
  return { base, prefix: base.pathname.replace(/\/+$/, ''), limiter, rest, windowMs };
}
