/**
 * Actor worker threads: spawning one that loads an actor's code (a warm spare waits in this
 * state), and activating it: its control port, its peer ports wired to the running peers, and the
 * wait for its start.
 */
import { performance } from 'node:perf_hooks';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ClockSpec } from './clock.ts';
import { type ActorEvent, unpackEvents } from './events.ts';
import { RuntimeError } from './protocol.ts';
import type { Activation, ControlApi, Lifecycle, WorkerBoot } from './wire.ts';

const BOOTSTRAP = new URL('./worker-bootstrap.mjs', import.meta.url);
const HOST = new URL(import.meta.url.endsWith('.ts') ? './actor-host.ts' : './actor-host.js', import.meta.url);

export interface ActorSpec {
  name: string;
  /** URL of the module whose default export is the actor's definition. */
  module: URL;
  /** The actor's configuration (structured-cloneable). */
  config: unknown;
  /** Names of the actors it exchanges data with; links are symmetric. */
  peers?: string[];
}

export interface Loaded {
  worker: Worker;
  /** Rejects if the worker dies before it is activated. */
  dead: Promise<never>;
  /** ms from spawning the thread to its actor code loaded (for start-up timings). */
  loadMs: number;
}

/**
 * Spawns a worker and waits until it has loaded the actor's code (and, given the log level it will
 * run at, built its logger).
 */
export function loadWorker(spec: ActorSpec, opts: { logLevel?: string } = {}): Promise<Loaded> {
  const boot: WorkerBoot = { module: spec.module.href, host: HOST.href, name: spec.name, ...(opts.logLevel ? { logLevel: opts.logLevel } : {}) };
  const t0 = performance.now();
  const worker = new Worker(BOOTSTRAP, { workerData: boot, name: `barkeep-${spec.name}` });
  let onDeath!: (err: Error) => void;
  const dead = new Promise<never>((_, reject) => (onDeath = reject));
  dead.catch(() => undefined);
  worker.on('error', (err) => onDeath(err));
  worker.on('exit', (code) => onDeath(new Error(`worker exited with code ${code} before activation`)));
  return new Promise<Loaded>((resolve, reject) => {
    dead.catch(reject);
    worker.once('message', (msg: Lifecycle) => {
      if (msg.type === 'loaded') resolve({ worker, dead, loadMs: performance.now() - t0 });
      else reject(new RuntimeError('ACTOR_START_FAILED', `${spec.name}: unexpected ${msg.type} while loading`));
    });
  });
}

export interface ActivationContext {
  clock: ClockSpec;
  counters: SharedArrayBuffer;
  logLevel: string;
  incarnation: number;
  faults: boolean;
  /** The running peers' control handles: each gets a port to the new actor. */
  peers: Array<{ name: string; remote: Comlink.Remote<ControlApi> }>;
  /** Receives the actor's events (events.ts). */
  onEvent?: (event: ActorEvent) => void;
}

/**
 * Turns a loaded worker into the running actor: hands it its control and peer ports and waits for
 * its start (the worker is terminated when the start fails). Returns its control handle and a
 * function that gives each running peer its end of the new link.
 */
export async function activateWorker(spec: ActorSpec, loaded: Loaded, ctx: ActivationContext): Promise<{ remote: Comlink.Remote<ControlApi>; attachPeers: () => Promise<void> }> {
  const { worker } = loaded;
  const control = new MessageChannel();
  const peers: Record<string, MessagePort> = {};
  const transfers: MessagePort[] = [control.port2];
  const attachLater: Array<() => Promise<void>> = [];
  for (const peer of ctx.peers) {
    const ch = new MessageChannel();
    peers[peer.name] = ch.port1;
    transfers.push(ch.port1);
    attachLater.push(() => peer.remote.attachPeer(spec.name, Comlink.transfer(ch.port2, [ch.port2 as never])));
  }
  // Events (events.ts): unref'd, and closed with the worker's end when the thread goes.
  const events = new MessageChannel();
  events.port1.on('message', (msg: ActorEvent | ActorEvent[]) => unpackEvents(msg, ctx.onEvent));
  events.port1.unref();
  transfers.push(events.port2);
  const activation: Activation = {
    type: 'activate',
    config: spec.config,
    clock: ctx.clock,
    counters: ctx.counters,
    logLevel: ctx.logLevel,
    incarnation: ctx.incarnation,
    faults: ctx.faults,
    controlPort: control.port2,
    peers,
    events: events.port2,
  };
  const started = new Promise<void>((resolve, reject) => {
    loaded.dead.catch(reject);
    worker.once('message', (msg: Lifecycle) => {
      if (msg.type === 'ready') resolve();
      else if (msg.type === 'start-failed') reject(new RuntimeError('ACTOR_START_FAILED', `${spec.name}: ${msg.message}`));
      else reject(new RuntimeError('ACTOR_START_FAILED', `${spec.name}: unexpected ${msg.type}`));
    });
  });
  worker.postMessage(activation, transfers as never);
  try {
    await started;
  } catch (err) {
    await worker.terminate().catch(() => undefined);
    throw err;
  }
  return {
    remote: Comlink.wrap<ControlApi>(nodeEndpoint(control.port1)),
    attachPeers: async () => {
      await Promise.all(attachLater.map((f) => f().catch(() => undefined)));
    },
  };
}
