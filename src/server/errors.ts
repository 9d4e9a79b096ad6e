/** HTTP errors: one shape for every refusal, `{ error, message, field? }`, with its status. */
import type { FastifyReply } from 'fastify';
import type { ZodError } from 'zod';
import { ActorCallError } from '../runtime/supervisor.ts';
import { RuntimeError } from '../runtime/protocol.ts';
import { fastifyErrorBody } from './limits.ts';

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

/**
 * Maps anything thrown in a handler to a reply in the one shape `{ error, field, message }`
 * (see limits.ts); validation errors from actors keep their field. A 4xx always names a field.
 */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof HttpError) {
    return reply.code(err.status).send({ error: err.error, field: err.field ?? (err.status < 500 ? 'body' : null), message: err.message });
  }
  if (err instanceof ActorCallError) {
    if (err.field) return reply.code(400).send({ error: 'bad_request', field: err.field, message: err.message });
    if (err.code === 'CONFLICT') return reply.code(409).send({ error: 'conflict', field: 'body', message: err.message });
    return reply.code(500).send({ error: err.code.toLowerCase(), field: null, message: err.message });
  }
  if (err instanceof RuntimeError) {
    if (err.code === 'ACTOR_NOT_FOUND') return reply.code(404).send({ error: 'actor_not_found', field: 'name', message: err.message });
    return reply.code(503).send({ error: err.code.toLowerCase(), field: null, message: err.message });
  }
  const mapped = fastifyErrorBody(err);
  if (mapped) return reply.code(mapped.status).send(mapped.body);
  return reply.code(500).send({ error: 'internal', field: null, message: (err as Error)?.message ?? String(err) });
}
