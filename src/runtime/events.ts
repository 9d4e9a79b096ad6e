/**
 * Events actors report to the main thread: what the dashboard streams on `GET /events`.
 *
 * Each actor gets its own MessagePort for events (separate from its control port and its peer
 * ports). `emit` is one postMessage: an actor never waits for the main thread, and nothing it does
 * depends on anyone listening. The main thread stamps each event with an id and keeps the recent
 * ones in a bounded ring (src/server/event-hub.ts).
 */
import type { MessagePort } from 'node:worker_threads';

/** The event types actors and the supervisor report. */
export type EventType = 'bar' | 'order' | 'fill' | 'feed_switch' | 'actor' | 'collector';

/** One event as it crosses the thread: its type, when (the actor's clock, epoch ms), its data. */
export interface ActorEvent {
  type: EventType;
  at: number;
  data: Record<string, unknown>;
}

export type EmitEvent = (type: EventType, data: Record<string, unknown>) => void;

/** Where the supervisor hands each event: the actor that sent it, and the event. */
export type EventSink = (actor: string, event: ActorEvent) => void;

/** The actor side: posts on the event port when there is one. A failed post is dropped and counted. */
export function eventEmitter(port: MessagePort | undefined, now: () => number, onDropped: () => void): EmitEvent {
  if (!port) return () => undefined;
  return (type, data) => {
    try {
      port.postMessage({ type, at: now(), data } satisfies ActorEvent);
    } catch {
      onDropped();
    }
  };
}
