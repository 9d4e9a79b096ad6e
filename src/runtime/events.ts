/**
 * Events actors report to the main thread: what the dashboard streams on `GET /events`.
 *
 * Each actor gets its own MessagePort for events (separate from its control port and its peer
 * ports). `emit` queues the event; the events of one turn go out as one postMessage (an array, in
 * order) on a microtask, so a 5,000-symbol bar close costs a handful of messages rather than
 * 10,000. An actor never waits for the main thread, and nothing it does depends on anyone
 * listening. The main thread unpacks the batch (`unpackEvents`), stamps each event with an id and
 * keeps the recent ones in bounded rings (src/server/event-hub.ts).
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

/**
 * The actor side: queues each event and posts the turn's events as one array on a microtask, when
 * there is an event port. When the batch cannot be posted (an event that does not clone), each
 * event is posted alone, so only the failing ones are dropped and counted.
 */
export function eventEmitter(port: MessagePort | undefined, now: () => number, onDropped: () => void): EmitEvent {
  if (!port) return () => undefined;
  let batch: ActorEvent[] = [];
  const flush = () => {
    const out = batch;
    batch = [];
    try {
      port.postMessage(out);
    } catch {
      for (const ev of out) {
        try {
          port.postMessage([ev]);
        } catch {
          onDropped();
        }
      }
    }
  };
  return (type, data) => {
    if (batch.length === 0) queueMicrotask(flush);
    batch.push({ type, at: now(), data });
  };
}

/** The receiving side: hands each event of a posted batch (or a lone event) to `sink`, in order. */
export function unpackEvents(msg: ActorEvent | ActorEvent[], sink: ((ev: ActorEvent) => void) | undefined): void {
  if (!sink) return;
  if (Array.isArray(msg)) for (const ev of msg) sink(ev);
  else sink(msg);
}
