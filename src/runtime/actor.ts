/**
 * How an actor is written. An actor module's default export is `defineActor({ start })`; the
 * runtime loads it in its own worker thread and calls `start` with a context. `start` returns the
 * handlers for the actor's control requests (its protocol's RequestMap) and a `stop` that flushes.
 */
import type { Clock } from '../market/clock.ts';
import type { Logger } from './log.ts';
import type { EmitEvent } from './events.ts';
import type { PeerLink } from './peer-link.ts';
import type { Handlers, MetricSample, PeerMessage, RequestMap } from './protocol.ts';

export interface ActorContext<Cfg> {
  readonly name: string;
  readonly config: Cfg;
  readonly clock: Clock;
  readonly log: Logger;
  /** How many times this actor was restarted before this incarnation (0 on the first start). */
  readonly incarnation: number;
  /** The link to a peer actor. Stable across the peer's restarts. */
  peer<Out extends PeerMessage, In extends PeerMessage>(name: string): PeerLink<Out, In>;
  /** Reports an event to the main thread (the dashboard's `/events`); never blocks, never throws. */
  emit: EmitEvent;
}

export interface ActorInstance<M extends RequestMap> {
  handlers: Handlers<M>;
  /** Flush what the actor holds and release resources; called on graceful shutdown. */
  stop?(): Promise<void> | void;
  /** The actor's own metric samples, gathered when /metrics is scraped. */
  metrics?(): MetricSample[];
}

export interface ActorDefinition<M extends RequestMap, Cfg> {
  start(ctx: ActorContext<Cfg>): Promise<ActorInstance<M>> | ActorInstance<M>;
}

export function defineActor<M extends RequestMap, Cfg>(def: ActorDefinition<M, Cfg>): ActorDefinition<M, Cfg> {
  return def;
}
