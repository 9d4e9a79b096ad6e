/**
 * HTTP errors: one shape for every refusal, `{ error, message, field? }`, with its status. Errors
 * are mapped to a status by their class and code (src/errors.ts), never by their text.
 */
import type { FastifyReply } from 'fastify';
import type { ZodError } from 'zod';
import type { ArbiterErrorCode } from '../actors/arbiter/protocol.ts';
import type { CollectorErrorCode } from '../actors/collector/protocol.ts';
import type { TraderErrorCode } from '../actors/trader/protocol.ts';
import { BarkeepError } from '../errors.ts';
import { ActorCallError, RuntimeError, type RuntimeErrorCode } from '../runtime/protocol.ts';

/** A refusal decided in the server itself, with its status and snake_case `error`. */
export class HttpError extends BarkeepError {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    field?: string,
  ) {
    super(error, message, field === undefined ? {} : { field });
  }
}

type ActorErrorCode = CollectorErrorCode | ArbiterErrorCode | TraderErrorCode;

/** Actor error codes that are the caller's doing; any other actor error is a 500 named by its code. */
const ACTOR_STATUS: Partial<Record<ActorErrorCode, { status: number; error: string }>> = {
  BAD_REQUEST: { status: 400, error: 'bad_request' },
  CONFLICT: { status: 409, error: 'conflict' },
};

/** Delivery failures: no such actor, or it cannot answer now. */
const RUNTIME_STATUS: Record<RuntimeErrorCode, number> = {
  ACTOR_NOT_FOUND: 404,
  ACTOR_UNAVAILABLE: 503,
  ACTOR_CALL_FAILED: 503,
  ACTOR_START_FAILED: 503,
  ACTOR_UNKNOWN_MESSAGE: 503,
  ACTOR_BAD_MESSAGE: 503,
};

export function badRequest(field: string, message: string): HttpError {
  return new HttpError(400, 'bad_request', message, field);
}

/** The first zod issue as a 400 naming the field (`symbols.1`, `bar_size`). */
export function fromZod(err: ZodError, prefix = ''): HttpError {
  const issue = err.issues[0];
  let field = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') field = [field, issue.keys[0]].filter(Boolean).join('.');
  field = prefix && field ? `${prefix}.${field}` : prefix || field || 'body';
  const message = issue.code === 'unrecognized_keys' ? `unknown field ${field}` : `${field}: ${issue.message}`;
  return badRequest(field, message);
}

function send(reply: FastifyReply, status: number, error: string, message: string, field?: string): FastifyReply {
  return reply.code(status).send({ error, message, ...(field ? { field } : {}) });
}

/** Maps anything thrown in a handler to a reply; validation errors from actors keep their field. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof HttpError) return send(reply, err.status, err.error, err.message, err.field);
  if (err instanceof ActorCallError) {
    // An actor's error naming a field is a refusal of the request's input, whatever its code.
    if (err.field) return send(reply, 400, 'bad_request', err.message, err.field);
    const known = ACTOR_STATUS[err.code as ActorErrorCode];
    if (known) return send(reply, known.status, known.error, err.message);
    return send(reply, 500, err.code.toLowerCase(), err.message);
  }
  if (err instanceof RuntimeError) return send(reply, RUNTIME_STATUS[err.code], err.code.toLowerCase(), err.message);
  // fastify's own refusals (a body it cannot parse, a content type it does not take) carry a 4xx statusCode.
  const e = err as { statusCode?: number; message?: string };
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return send(reply, e.statusCode, 'bad_request', e.message ?? 'bad request', 'body');
  }
  return send(reply, 500, 'internal', (err as Error)?.message ?? String(err));
}
