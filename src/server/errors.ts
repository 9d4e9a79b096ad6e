/** HTTP errors: one shape for every refusal, `{ error, message, field? }`, with its status. */
import type { FastifyReply } from 'fastify';
import type { ZodError } from 'zod';
import { ActorCallError } from '../runtime/supervisor.ts';
import { RuntimeError } from '../runtime/protocol.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

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

/** Maps anything thrown in a handler to a reply; validation errors from actors keep their field. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof HttpError) {
    return reply.code(err.status).send({ error: err.error, message: err.message, ...(err.field ? { field: err.field } : {}) });
  }
  if (err instanceof ActorCallError) {
    if (err.field) return reply.code(400).send({ error: 'bad_request', message: err.message, field: err.field });
    if (err.code === 'CONFLICT') return reply.code(409).send({ error: 'conflict', message: err.message });
    return reply.code(500).send({ error: err.code.toLowerCase(), message: err.message });
  }
  if (err instanceof RuntimeError) {
    const status = err.code === 'ACTOR_NOT_FOUND' ? 404 : 503;
    return reply.code(status).send({ error: err.code.toLowerCase(), message: err.message });
  }
  const e = err as { statusCode?: number; message?: string; validation?: unknown };
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return reply.code(e.statusCode).send({ error: 'bad_request', message: e.message ?? 'bad request', field: 'body' });
  }
  return reply.code(500).send({ error: 'internal', message: (err as Error)?.message ?? String(err) });
}
