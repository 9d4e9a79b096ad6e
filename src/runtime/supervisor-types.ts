/** What the supervisor reports about its actors, and the typed handle it gives for calls to one. */
import type { ActorState, RequestMap } from './protocol.ts';

export interface ActorInfo {
  name: string;
  state: ActorState;
  thread_id: number | null;
  restarts: number;
  last_error: string | null;
  uptime_s: number | null;
}

/** Where the time of an actor's latest start (or restart) went, in ms of real time. */
export interface StartTiming {
  actor: string;
  incarnation: number;
  /** Its worker was a spare that had finished loading before it was needed. */
  warm: boolean;
  /** Waited for the worker to load (0 when warm). */
  wait_ms: number;
  /** The worker's own load: thread start and the actor's modules. */
  load_ms: number;
  /** Activation: the actor's `start` (storage, warm-up) and the peer links. */
  activate_ms: number;
}

export interface ActorHandle<M extends RequestMap> {
  call<K extends keyof M & string>(type: K, body: M[K]['req']): Promise<M[K]['res']>;
}
