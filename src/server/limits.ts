/**
 * What the HTTP edge accepts, and the one error shape for everything the server refuses, its own
 * handlers' refusals and fastify's (bad percent-encoding, over-long path parameters, bodies too
 * large, malformed requests, unsupported media types).
 *
 * Every error body is `{ error, field, message }`: `error` a stable snake_case code, `field` the
 * input at fault (`body`, `path`, `authorization`, `strategy_params.a.b`, ...; null only for 5xx),
 * `message` a sentence that never echoes more than a short prefix of the input.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Server-wide and per-route limits (bytes, levels, ms). */
export const LIMITS = {
  /** Default body limit for every route. */
  bodyBytes: 16 * 1024,
  /** POST /live/start carries strategy_params. */
  liveStartBodyBytes: 64 * 1024,
  /** Nesting depth of strategy_params (an object at the top counts as 1). */
  paramsDepth: 8,
  /** Keys and array items in strategy_params, all levels together. */
  paramsNodes: 1000,
  /** Longest path parameter (a symbol is at most 15 characters; an actor name shorter). */
  maxParamLength: 100,
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 5_000,
  keepAliveTimeoutMs: 5_000,
  /** How often node checks requestTimeout/headersTimeout (its default is 30 s). */
  connectionsCheckingIntervalMs: 1_000,
} as const;

export interface ErrorBody {
  error: string;
  field: string | null;
  message: string;
}

/** A short, printable excerpt of untrusted text for a message. */
export function excerpt(text: string, max = 40): string {
  const t = String(text);
  const cut = t.length > max ? `${t.slice(0, max)}...(${t.length} chars)` : t;
  return JSON.stringify(cut);
}

/**
 * Why a JSON value is too deep or too big, as [field, message], or undefined when it fits. Walks
 * iteratively, so a value nested 100,000 levels deep cannot overflow the stack here.
 */
export function jsonShapeProblem(value: unknown, field: string, maxDepth = LIMITS.paramsDepth, maxNodes = LIMITS.paramsNodes): [string, string] | undefined {
  const stack: Array<[unknown, string, number]> = [[value, field, 1]];
  let nodes = 0;
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > maxDepth) return [path, `${field} is nested deeper than ${maxDepth} levels`];
    const entries: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    nodes += entries.length;
    if (nodes > maxNodes) return [field, `${field} has more than ${maxNodes} keys and items`];
    for (const [k, x] of entries) stack.push([x, `${path}.${k}`, depth + 1]);
  }
  return undefined;
}

/** Fastify's own error codes, mapped to barkeep's status, code and field. */
const FASTIFY_CODES: Record<string, { status: number; error: string; field: string; message: string }> = {
  FST_ERR_BAD_URL: { status: 400, error: 'bad_url', field: 'path', message: 'the path is not valid percent-encoding' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, error: 'uri_too_long', field: 'path', message: `a path parameter is longer than ${LIMITS.maxParamLength} characters` },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, error: 'body_too_large', field: 'body', message: 'the body is larger than this route accepts' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, error: 'unsupported_media_type', field: 'content-type', message: 'send the body as application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, error: 'bad_content_length', field: 'content-length', message: 'content-length does not match the body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, error: 'bad_json', field: 'body', message: 'the body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, error: 'bad_json', field: 'body', message: 'the body is not valid JSON' },
  FST_ERR_CTP_INVALID_TYPE: { status: 415, error: 'unsupported_media_type', field: 'content-type', message: 'the content-type is not valid' },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, error: 'bad_request', field: 'path', message: 'the request matches no route constraint' },
  FST_ERR_REQ_INVALID_VALIDATION_INVOCATION: { status: 400, error: 'bad_request', field: 'body', message: 'the request could not be validated' },
};

/** The error body for one of fastify's errors, or undefined when it is not one of them. */
export function fastifyErrorBody(err: unknown): { status: number; body: ErrorBody } | undefined {
  const e = err as { code?: string; statusCode?: number; message?: string } | null;
  if (!e || typeof e !== 'object') return undefined;
  const known = e.code ? FASTIFY_CODES[e.code] : undefined;
  if (known) return { status: known.status, body: { error: known.error, field: known.field, message: known.message } };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    const code = e.code ? e.code.replace(/^FST_ERR_/, '').toLowerCase() : 'bad_request';
    return { status: e.statusCode, body: { error: code, field: 'body', message: String(e.message ?? 'bad request').slice(0, 200) } };
  }
  return undefined;
}

/** For fastify's `frameworkErrors`: errors raised before routing (bad URL, over-long parameter). */
export function frameworkErrors(err: Error, _req: FastifyRequest, reply: FastifyReply): void {
  const mapped = fastifyErrorBody(err) ?? { status: 400, body: { error: 'bad_request', field: 'path', message: 'the request could not be routed' } };
  void reply.code(mapped.status).send(mapped.body);
}

/** The 404 for a path no route serves; echoes only a short prefix of the path. */
export function notFoundBody(method: string, url: string): ErrorBody {
  return { error: 'not_found', field: 'path', message: `no route ${method} ${excerpt(url.split('?')[0], 60)}` };
}

/** For fastify's `clientErrorHandler`: a request node could not parse, answered in barkeep's shape. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const status = timeout ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
  const body = JSON.stringify(
    timeout
      ? { error: 'request_timeout', field: 'body', message: 'the whole request did not arrive within the server request timeout' }
      : { error: 'bad_http', field: 'request', message: 'the request is not valid HTTP' },
  );
  const reason = timeout ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** fastify's `serverFactory`: node's server with request and header deadlines checked every second. */
export function serverFactory(requestTimeoutMs: number = LIMITS.requestTimeoutMs) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
    createServer(
      {
        requestTimeout: requestTimeoutMs,
        headersTimeout: Math.min(LIMITS.headersTimeoutMs, requestTimeoutMs),
        keepAliveTimeout: LIMITS.keepAliveTimeoutMs,
        connectionsCheckingInterval: LIMITS.connectionsCheckingIntervalMs,
      },
      handler,
    );
}
