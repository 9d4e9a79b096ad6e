/**
 * The REST plumbing both vendor adapters share: every request goes through the source's rate
 * limiter (retries included), failures are mapped to SourceError codes, and transient ones (429,
 * 5xx, 499, 413, timeouts, dropped connections) are retried with exponential backoff on the
 * injected clock.
 *
 * Decisions:
 * - Secrets travel only in headers. Errors, logs and stats name the path, never the query or a
 *   header, and any vendor text that echoes a secret is redacted.
 * - A 2xx body that is not JSON is retried once (a cut or garbled body is usually a transport
 *   hiccup), then reported as MALFORMED. The next call starts afresh.
 * - 429 pauses the whole limiter until the vendor's window frees (the adapter says when), so
 *   concurrent fetches of the same key wait too instead of hammering.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import type { Bar } from '../market/bar.ts';
import { isValidSymbol } from '../market/bar.ts';
import { type BarSize, isBarSize } from '../market/bar-size.ts';
import type { Clock } from '../market/clock.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { SourceError, type SourceErrorCode, type SourceName, type SourceStats } from './types.ts';
import { backoff } from '../runtime/backoff.ts';
import { BarkeepError } from '../errors.ts';

/** A pino-like logger; every method optional to call, none required to exist beyond these three. */
export interface SourceLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export const silentLogger: SourceLogger = { warn() {}, info() {}, debug() {} };

export interface VendorReply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** What differs between vendors in reading replies. */
export interface VendorPolicy {
  /** Maps a non-2xx reply (body parsed when it was JSON) to an error. */
  classifyError(reply: VendorReply, body: unknown, url: URL): SourceError;
  /** A 2xx reply whose JSON still says it failed (Massive `status`), else undefined. */
  checkBody?(body: unknown, reply: VendorReply, url: URL): SourceError | undefined;
  /** Sees every reply, good or bad (Alpaca's X-RateLimit-* headers). */
  observe?(reply: VendorReply): void;
  /** After a 429: clock ms when requests may resume. */
  resumeAfterRateLimit(reply: VendorReply): number;
}

export interface VendorRestOptions {
  source: SourceName;
  clock: Clock;
  limiter: RateLimiter;
  rateLimitPerMin: number;
  headers: Record<string, string>;
  /** Header values that must never leak (keys, secrets). */
  secrets: string[];
  policy: VendorPolicy;
  timeoutMs: number;
  maxRetries: number;
  /** First retry waits this long; each further retry doubles it (capped at 30 s). */
  backoffMs: number;
  logger: SourceLogger;
}

const MAX_BACKOFF_MS = 30_000;
const DEADLINE_CODE = 'BARKEEP_REQUEST_DEADLINE';

/** The abort reason when a request's whole answer misses its total deadline. */
class RequestDeadlineError extends BarkeepError<typeof DEADLINE_CODE> {
  constructor() {
    super(DEADLINE_CODE, 'request deadline');
  }
}
const MAX_RESPONSE_BYTES = 128 * 1024 * 1024;

export class VendorRest {
  private readonly opts: VendorRestOptions;
  private readonly agent: Agent;
  private counters = { requests: 0, errors: 0, retries: 0, rateLimited: 0, malformed: 0 };
  private lastError: SourceStats['lastError'];

  constructor(opts: VendorRestOptions) {
    this.opts = opts;
    this.agent = new Agent({
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.timeoutMs },
      maxResponseSize: MAX_RESPONSE_BYTES,
    });
  }

  /** Counts a failure the adapter found after a good reply (an unreadable page, a bad next_url). */
  noteError(err: SourceError): void {
    this.counters.errors++;
    this.lastError = { code: err.code, message: this.redact(err.message), status: err.status, at: this.opts.clock.now() };
  }

  /** Malformed bars are counted by the adapter that reads them. */
  countMalformed(n: number): void {
    this.counters.malformed += n;
  }

  stats(): SourceStats {
    return {
      ...this.counters,
      rateLimitRemaining: this.opts.limiter.remaining(),
      rateLimitPerMin: this.opts.rateLimitPerMin,
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
    };
  }

  /** Replaces every secret in `text`. */
  redact(text: string): string {
    let out = text;
    for (const s of this.opts.secrets) if (s) out = out.split(s).join('[redacted]');
    return out;
  }

  /**
   * GETs `url` and returns its parsed JSON body, retrying what is transient.
   * Rejects with a SourceError; `url` must not carry a secret.
   */
  async getJson(url: URL, signal?: AbortSignal): Promise<{ body: unknown; reply: VendorReply }> {
    const { clock, limiter, policy, maxRetries, logger, source } = this.opts;
    let attempt = 0;
    let malformedRetryLeft = 1;
    for (;;) {
      this.throwIfAborted(signal);
      try {
        await limiter.acquire(signal);
      } catch (err) {
        throw this.aborted(err);
      }
      this.counters.requests++;
      let error: SourceError;
      let reply: VendorReply | undefined;
      try {
        reply = await this.send(url, signal);
        const outcome = this.read(reply, url);
        if (outcome.ok) return { body: outcome.body, reply };
        error = outcome.error;
      } catch (err) {
        if (signal?.aborted) throw this.aborted(signal.reason);
        error = this.transportError(err, url);
      }

      this.counters.errors++;
      this.lastError = { code: error.code, message: error.message, status: error.status, at: clock.now() };
      if (error.code === 'RATE_LIMITED' && reply) {
        this.counters.rateLimited++;
        limiter.pauseUntil(policy.resumeAfterRateLimit(reply));
      }
      let retry = error.retryable;
      if (error.code === 'MALFORMED' && malformedRetryLeft > 0) {
        malformedRetryLeft--;
        retry = true;
      }
      if (!retry || attempt >= maxRetries) {
        if (attempt > 0) error = this.afterRetries(error, attempt + 1);
        this.lastError.message = error.message;
        logger.warn({ source, path: url.pathname, code: error.code, status: error.status, attempts: attempt + 1 }, 'request failed');
        throw error;
      }
      attempt++;
      this.counters.retries++;
      const wait = backoff(attempt - 1, { initialMs: this.opts.backoffMs, maxMs: MAX_BACKOFF_MS });
      logger.warn({ source, path: url.pathname, code: error.code, status: error.status, attempt, waitMs: wait }, 'request failed, retrying');
      try {
        await clock.sleep(wait, signal);
      } catch (err) {
        throw this.aborted(err);
      }
    }
  }

  async close(): Promise<void> {
    this.opts.limiter.cancelAll(new SourceError(this.opts.source, 'ABORTED', `${this.opts.source}: source closed`));
    await this.agent.close();
  }

  /**
   * One GET with a total deadline of 2 x timeoutMs from the first byte sent to the last received:
   * undici's timeouts bound only idle time, so a peer dripping a byte every few seconds would hold
   * the request (and the collector's cycle) for ever.
   */
  private async send(url: URL, signal?: AbortSignal): Promise<VendorReply> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new RequestDeadlineError()), this.opts.timeoutMs * 2);
    try {
      const res = await request(url, {
        method: 'GET',
        headers: { accept: 'application/json', ...this.opts.headers },
        dispatcher: this.agent,
        signal: signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal,
      });
      const text = await res.body.text();
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (deadline.signal.aborted && !signal?.aborted) throw deadline.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The parsed body on success, or the SourceError the reply stands for. */
  private read(reply: VendorReply, url: URL): { ok: true; body: object } | { ok: false; error: SourceError } {
    const { source, policy } = this.opts;
    policy.observe?.(reply);
    let body: unknown;
    let parsed = true;
    try {
      body = JSON.parse(reply.text);
    } catch {
      parsed = false;
    }
    if (reply.status >= 200 && reply.status < 300) {
      if (!parsed || body === null || typeof body !== 'object') {
        const error = new SourceError(source, 'MALFORMED', `${source}: GET ${url.pathname}: response is not a JSON object`, {
          status: reply.status,
        });
        return { ok: false, error };
      }
      const refused = policy.checkBody?.(body, reply, url);
      return refused ? { ok: false, error: this.scrub(refused) } : { ok: true, body };
    }
    return { ok: false, error: this.scrub(policy.classifyError(reply, parsed ? body : undefined, url)) };
  }

  /** Redacts, then cuts: never the other way round (a cut key would escape the redaction). */
  private scrub(err: SourceError): SourceError {
    const message = cutText(this.redact(err.message), VENDOR_TEXT_MAX + 200);
    const vendorMessage = err.vendorMessage === undefined ? undefined : cutText(this.redact(err.vendorMessage));
    if (message === err.message && vendorMessage === err.vendorMessage) return err;
    return new SourceError(err.source, err.code, message, { status: err.status, vendorMessage, retryable: err.retryable });
  }

  private transportError(err: unknown, url: URL): SourceError {
    const { source } = this.opts;
    const code = (err as { code?: string } | null)?.code ?? '';
    const what = `${source}: GET ${url.pathname}`;
    if (code === DEADLINE_CODE) {
      return new SourceError(source, 'TIMEOUT', `${what}: the whole answer did not arrive within ${this.opts.timeoutMs * 2} ms (a slow drip)`, { cause: err });
    }
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new SourceError(source, 'TIMEOUT', `${what}: no answer within ${this.opts.timeoutMs} ms (${code})`, { cause: err });
    }
    if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
      return new SourceError(source, 'MALFORMED', `${what}: response larger than ${MAX_RESPONSE_BYTES} bytes`, { cause: err });
    }
    const detail = code || (err instanceof Error ? err.message : String(err));
    return new SourceError(source, 'UNAVAILABLE', `${what}: connection failed (${this.redact(detail)})`, { cause: err });
  }

  private afterRetries(err: SourceError, attempts: number): SourceError {
    return new SourceError(err.source, err.code, `${err.message} (gave up after ${attempts} attempts)`, {
      status: err.status,
      vendorMessage: err.vendorMessage,
      retryable: err.retryable,
      cause: err.cause,
    });
  }

  private throwIfAborted(signal?: AbortSignal): void {
    if (signal?.aborted) throw this.aborted(signal.reason);
  }

  private aborted(reason: unknown): SourceError {
    if (reason instanceof SourceError) return reason;
    return new SourceError(this.opts.source, 'ABORTED', `${this.opts.source}: request aborted`, { cause: reason });
  }
}

/** The SourceError code an HTTP status stands for, before any vendor-specific reading. */
export function codeForStatus(status: number): SourceErrorCode {
  if (status === 401) return 'AUTH';
  if (status === 403) return 'FORBIDDEN';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 413 || status === 499 || status >= 500) return 'UNAVAILABLE';
  return 'BAD_REQUEST';
}

/** Longest vendor text kept in an error, after redaction. */
export const VENDOR_TEXT_MAX = 300;

/**
 * A vendor's error text, whole (bounded only against absurd sizes); undefined when there is none.
 * It is NOT cut to a readable length here: a key echoed past the cut would survive in part. The
 * REST plumbing redacts the secrets first, then cuts (cutText).
 */
export function vendorText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (!text) return undefined;
  return text.length > 64 * 1024 ? text.slice(0, 64 * 1024) : text;
}

/** Cuts already-redacted text to `max` characters. */
export function cutText(text: string, max = VENDOR_TEXT_MAX): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** First header value as a string. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Refuses fetch arguments the vendor would reject anyway, naming the field. */
export function checkFetchArgs(source: SourceName, symbol: string, barSize: BarSize, from: number, to: number): void {
  if (!isValidSymbol(symbol)) {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: symbol ${JSON.stringify(symbol)} is not a valid ticker`);
  }
  if (!isBarSize(barSize)) {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: barSize ${JSON.stringify(barSize)} is not one of 1Min..1Day`);
  }
  if (!Number.isFinite(from) || !Number.isFinite(to)) {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: from and to must be finite epoch ms`);
  }
}

/** Oldest first with one bar per start (the later one wins); pages normally arrive so already. */
export function inStartOrder(bars: Bar[]): Bar[] {
  let sorted = true;
  for (let i = 1; i < bars.length; i++) {
    if (bars[i].start <= bars[i - 1].start) {
      sorted = false;
      break;
    }
  }
  if (sorted) return bars;
  const byStart = new Map<number, Bar>();
  for (const b of bars) byStart.set(b.start, b);
  return [...byStart.values()].sort((a, b) => a.start - b.start);
}

/** A vendor's base URL from the config: http(s) only, with no query or fragment to leak into paths. */
export function parseVendorUrl(source: SourceName, field: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: ${field} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SourceError(source, 'BAD_REQUEST', `${source}: ${field} must be http(s), got ${url.protocol}`);
  }
  url.search = '';
  url.hash = '';
  return url;
}
