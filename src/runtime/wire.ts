/** What the supervisor and an actor's thread say to each other (lifecycle and control RPC). */
import type { MessagePort } from 'node:worker_threads';
import type { ClockSpec } from './clock.ts';
import type { MetricSample } from './protocol.ts';

/** Data the worker is spawned with, before it is activated. */
export interface WorkerBoot {
  module: string;
  host: string;
  name: string;
  /** The log level the actor is expected to run at: its logger is built while the thread waits as a spare. */
  logLevel?: string;
}

/** Sent on the worker's parentPort to turn a loaded (warm) worker into the running actor. */
export interface Activation {
  type: 'activate';
  config: unknown;
  clock: ClockSpec;
  counters: SharedArrayBuffer;
  logLevel: string;
  incarnation: number;
  faults: boolean;
  controlPort: MessagePort;
  peers: Record<string, MessagePort>;
  /** Where the actor's events go (see events.ts); the main thread listens on the other end. */
  events?: MessagePort;
}

export type Lifecycle = { type: 'loaded' } | { type: 'ready' } | { type: 'start-failed'; message: string; code?: string };

/** A control call's result. Errors come back as data so their code and field survive the thread hop. */
export type CallResult = { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; field?: string } };

/** The object an actor exposes over comlink on its control port. */
export interface ControlApi {
  request(msg: unknown): Promise<CallResult>;
  attachPeer(name: string, port: MessagePort): void;
  metrics(): MetricSample[];
  stop(): Promise<void>;
  crash(): boolean;
}
