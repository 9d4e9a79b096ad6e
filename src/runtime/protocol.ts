/**
 * The shapes every actor protocol is built from. An actor's `protocol.ts` declares a RequestMap
 * (control requests from the main thread, typed RPC over comlink) and unions of the messages it
 * sends and receives on its peer ports. Only these cross a thread boundary.
 */
import { BarkeepError } from '../errors.ts';

/** Control requests an actor accepts: request type -> request body and response. */
export type RequestMap = Record<string, { req: object; res: unknown }>;

/** What an actor implements for its control requests. */
export type Handlers<M extends RequestMap> = {
  [K in keyof M]: (req: M[K]['req']) => M[K]['res'] | Promise<M[K]['res']>;
};

/** A message on a peer port: a discriminated union on `type`. */
export interface PeerMessage {
  type: string;
}

export type ActorState = 'starting' | 'running' | 'restarting' | 'failed' | 'stopping' | 'stopped';

export type RuntimeErrorCode =
  | 'ACTOR_UNKNOWN_MESSAGE' // a request or peer message of a type the actor does not handle
  | 'ACTOR_BAD_MESSAGE' // a message that is not an object with a string `type`
  | 'ACTOR_UNAVAILABLE' // the actor is restarting, failed or stopped
  | 'ACTOR_CALL_FAILED' // the call could not be delivered (e.g. not cloneable)
  | 'ACTOR_NOT_FOUND'
  | 'ACTOR_START_FAILED';

export class RuntimeError extends BarkeepError<RuntimeErrorCode> {}

/**
 * An error an actor's handler returned, rebuilt on the main thread with its code (one of that
 * actor's codes, declared in its protocol.ts) and, for validation errors, the field.
 */
export class ActorCallError extends BarkeepError {
  constructor(
    readonly actor: string,
    code: string,
    message: string,
    field?: string,
  ) {
    super(code, message, field === undefined ? {} : { field });
  }
}

/** One named metric sample an actor reports (its own domain counters). */
export interface MetricSample {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labels: Record<string, string>;
  value: number;
}
