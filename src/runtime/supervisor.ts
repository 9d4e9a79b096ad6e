/**
 * The supervisor: starts each actor in its own worker thread, wires the actors' peer ports, serves
 * typed control calls to them, and restarts one that crashes (one-for-one).
 *
 * Lifecycle of an actor: starting -> running -> (crash) restarting -> running, or -> failed once it
 * has crashed more than `maxRestarts` times inside `restartWindowMs`; stopping -> stopped on shutdown.
 *
 * Restart delay is `backoffInitialMs` doubling per restart inside the window, up to `backoffMaxMs`
 * (restart-policy.ts, on the supervisor's injected clock). Loading a worker under tsx takes longer
 * than the first backoff, so the supervisor keeps a warm spare per actor: a worker that has already
 * loaded the actor's code and waits to be activated (actor-worker.ts). A restart activates the
 * spare, wires it to its running peers, and loads the next spare behind it.
 */
import type { Worker } from 'node:worker_threads';
import type * as Comlink from 'comlink';
import { RealClock, type Clock, type TimerHandle } from '../market/clock.ts';
import { activateWorker, loadWorker, type ActorSpec, type Loaded } from './actor-worker.ts';
import type { ClockSpec } from './clock.ts';
import type { EventSink } from './events.ts';
import { COUNTER, counterView, newCounterBuffer } from './counters.ts';
import type { Logger } from './log.ts';
import { ActorCallError, RuntimeError, type ActorState, type MetricSample, type RequestMap } from './protocol.ts';
import { decideRestart } from './restart-policy.ts';
import type { ControlApi } from './wire.ts';

export type { ActorSpec } from './actor-worker.ts';

export interface SupervisorPolicy {
  backoffInitialMs: number;
  backoffMaxMs: number;
  maxRestarts: number;
  restartWindowMs: number;
  shutdownTimeoutMs: number;
  /** Keep a loaded spare worker per actor so a restart need not wait for a cold load. */
  warmSpares: boolean;
  /** A control call that gets no answer in this long fails. */
  callTimeoutMs: number;
}

export const DEFAULT_POLICY: SupervisorPolicy = {
  backoffInitialMs: 100,
  backoffMaxMs: 10_000,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  shutdownTimeoutMs: 10_000,
  warmSpares: true,
  callTimeoutMs: 10_000,
};

export interface SupervisorOptions {
  actors: ActorSpec[];
  /** The actors' clock: each worker builds it from this spec. */
  clock: ClockSpec;
  /** The supervisor's own time: restart backoff and window, call and stop timeouts, uptime. Default the real clock. */
  supervisionClock?: Clock;
  log: Logger;
  logLevel?: string;
  policy?: Partial<SupervisorPolicy>;
  /** Enables crash drills (BARKEEP_FAULTS=1). */
  faults?: boolean;
  /** Receives the actors' events, and an `actor` event from 'supervisor' at each state change. */
  onEvent?: EventSink;
}

export interface ActorInfo {
  name: string;
  state: ActorState;
  thread_id: number | null;
  restarts: number;
  last_error: string | null;
  uptime_s: number | null;
}

interface ActorRecord {
  spec: ActorSpec;
  state: ActorState;
  worker?: Worker;
  remote?: Comlink.Remote<ControlApi>;
  spare?: Promise<Loaded>;
  counters: SharedArrayBuffer;
  restarts: number;
  restartTimes: number[];
  lastError: string | null;
  readyAt: number | null;
  restartTimer?: TimerHandle;
  pending: Set<(err: Error) => void>;
  /** Resolves when the actor is next running (used by tests and drills). */
  waiters: Array<() => void>;
}

export class Supervisor {
  private readonly records = new Map<string, ActorRecord>();
  private readonly links: Array<[string, string]> = [];
  private readonly policy: SupervisorPolicy;
  private readonly log: Logger;
  private readonly clock: Clock;
  private stopping = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
    this.log = opts.log.child({ component: 'supervisor' });
    this.clock = opts.supervisionClock ?? new RealClock();
    for (const spec of opts.actors) {
      this.records.set(spec.name, {
        spec,
        state: 'stopped',
        counters: newCounterBuffer(),
        restarts: 0,
        restartTimes: [],
        lastError: null,
        readyAt: null,
        pending: new Set(),
        waiters: [],
      });
    }
    const seen = new Set<string>();
    for (const spec of opts.actors) {
      for (const peer of spec.peers ?? []) {
        if (!this.records.has(peer)) throw new RuntimeError('ACTOR_NOT_FOUND', `${spec.name} names unknown peer ${peer}`);
        const key = [spec.name, peer].sort().join('|');
        if (!seen.has(key)) {
          seen.add(key);
          this.links.push([spec.name, peer]);
        }
      }
    }
  }

  /** Starts every actor, in the order given, and waits until all run. */
  async start(): Promise<void> {
    // Every worker loads its modules at once (the slow part of a cold start); they are then
    // activated one by one, in the order given.
    const records = [...this.records.values()];
    const loading = records.map((rec) => loadWorker(rec.spec));
    for (const l of loading) l.catch(() => undefined);
    try {
      for (const [i, rec] of records.entries()) {
        rec.state = 'starting';
        await this.activate(rec, await loading[i], 0);
      }
    } catch (err) {
      // Workers loaded for actors that will never be activated must not keep the process alive.
      for (const [i, rec] of records.entries()) {
        if (rec.state === 'stopped')
          loading[i].then(
            (l) => l.worker.terminate(),
            () => undefined,
          );
      }
      throw err;
    }
    if (this.policy.warmSpares) for (const rec of this.records.values()) this.prepareSpare(rec);
  }

  names(): string[] {
    return [...this.records.keys()];
  }

  list(): ActorInfo[] {
    return [...this.records.values()].map((rec) => ({
      name: rec.spec.name,
      state: rec.state,
      thread_id: rec.state === 'running' && rec.worker ? rec.worker.threadId : null,
      restarts: rec.restarts,
      last_error: rec.lastError,
      uptime_s: rec.state === 'running' && rec.readyAt !== null ? (this.clock.now() - rec.readyAt) / 1000 : null,
    }));
  }

  /** Healthy when every actor runs; otherwise the reasons, naming the actors. */
  health(): { ok: boolean; reasons: string[] } {
    const reasons: string[] = [];
    for (const rec of this.records.values()) {
      if (rec.state === 'running') continue;
      const why = rec.lastError ? `: ${rec.lastError}` : '';
      reasons.push(`${rec.spec.name} is ${rec.state}${rec.state === 'failed' || rec.state === 'restarting' ? why : ''}`);
    }
    return { ok: reasons.length === 0, reasons };
  }

  /** Runtime counters of an actor (messages in/out, failed, event-loop lag). */
  counters(name: string): { messagesIn: number; messagesOut: number; failed: number; lagMeanMs: number; lagMaxMs: number } {
    const c = counterView(this.record(name).counters);
    return {
      messagesIn: c[COUNTER.messagesIn],
      messagesOut: c[COUNTER.messagesOut],
      failed: c[COUNTER.failedMessages],
      lagMeanMs: c[COUNTER.loopLagMeanMs],
      lagMaxMs: c[COUNTER.loopLagMaxMs],
    };
  }

  /** A typed handle for control calls to one actor. */
  handle<M extends RequestMap>(name: string): ActorHandle<M> {
    this.record(name);
    return {
      call: (type, body) => this.call(name, type, body) as never,
    };
  }

  /** Sends a control request; rejects with RuntimeError (delivery) or ActorCallError (the handler's). */
  async call(name: string, type: string, body: object = {}): Promise<unknown> {
    const rec = this.record(name);
    const remote = rec.remote;
    if (rec.state !== 'running' || !remote) {
      throw new RuntimeError('ACTOR_UNAVAILABLE', `${name} is ${rec.state}`);
    }
    const result = await this.guarded(rec, async () => {
      try {
        return await remote.request({ ...body, type });
      } catch (err) {
        counterView(rec.counters)[COUNTER.failedMessages]++;
        throw new RuntimeError('ACTOR_CALL_FAILED', `${name}.${type} could not be delivered: ${(err as Error).message}`, {
          cause: err,
        });
      }
    });
    if (!result.ok) throw new ActorCallError(name, result.error.code, result.error.message, result.error.field);
    return result.value;
  }

  /** Domain metrics an actor reports; empty while it is not running. */
  async actorMetrics(name: string): Promise<MetricSample[]> {
    const rec = this.record(name);
    if (rec.state !== 'running' || !rec.remote) return [];
    try {
      return await this.guarded(rec, () => rec.remote!.metrics());
    } catch {
      return [];
    }
  }

  /** Crash drill: makes the actor throw an uncaught error inside its thread. */
  async crash(name: string): Promise<void> {
    const rec = this.record(name);
    if (!this.opts.faults) throw new RuntimeError('ACTOR_UNAVAILABLE', 'crash drills need BARKEEP_FAULTS=1');
    if (rec.state !== 'running' || !rec.remote) throw new RuntimeError('ACTOR_UNAVAILABLE', `${name} is ${rec.state}`);
    await this.guarded(rec, () => rec.remote!.crash());
  }

  /**
   * Operator's restart of an actor the supervisor gave up on: forgets its restart history and
   * starts it again. False (nothing done) when the actor has not failed.
   */
  async revive(name: string): Promise<boolean> {
    const rec = this.record(name);
    if (rec.state !== 'failed' || this.stopping) return false;
    rec.restartTimes = [];
    rec.state = 'restarting';
    this.log.warn({ actor: name, last_error: rec.lastError }, 'operator restarts a failed actor');
    void this.restart(rec);
    return true;
  }

  /** Resolves when the actor is running again (or now, if it is). */
  whenRunning(name: string): Promise<void> {
    const rec = this.record(name);
    if (rec.state === 'running') return Promise.resolve();
    return new Promise((resolve) => rec.waiters.push(resolve));
  }

  /** Stops the actors in reverse start order, letting each flush; terminates what does not stop in time. */
  async stop(): Promise<void> {
    this.stopping = true;
    const deadline = this.clock.now() + this.policy.shutdownTimeoutMs;
    for (const rec of [...this.records.values()].reverse()) {
      rec.restartTimer?.cancel();
      const spare = rec.spare;
      rec.spare = undefined;
      if (spare)
        spare.then(
          (l) => l.worker.terminate(),
          () => undefined,
        );
      if (!rec.worker) {
        rec.state = rec.state === 'failed' ? 'failed' : 'stopped';
        continue;
      }
      rec.state = 'stopping';
      const remaining = Math.max(100, deadline - this.clock.now());
      try {
        await withTimeout(this.clock, rec.remote!.stop(), remaining, `${rec.spec.name} did not stop in time`);
      } catch (err) {
        this.log.warn({ actor: rec.spec.name, err: (err as Error).message }, 'actor stop failed; terminating');
      }
      await rec.worker.terminate();
      rec.worker = undefined;
      rec.remote = undefined;
      rec.state = 'stopped';
      this.announce(rec);
    }
  }

  /** Reports an actor's state change as an `actor` event. */
  private announce(rec: ActorRecord): void {
    const info = this.list().find((a) => a.name === rec.spec.name);
    if (info) this.opts.onEvent?.('supervisor', { type: 'actor', at: this.clock.now(), data: { ...info } });
  }

  private record(name: string): ActorRecord {
    const rec = this.records.get(name);
    if (!rec) throw new RuntimeError('ACTOR_NOT_FOUND', `no actor named ${name}`);
    return rec;
  }

  /** Runs a call that must fail (not hang) if the actor dies or does not answer. */
  private guarded<T>(rec: ActorRecord, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        timer.cancel();
        rec.pending.delete(fail);
        reject(err);
      };
      const timer = this.clock.setTimeout(() => fail(new RuntimeError('ACTOR_UNAVAILABLE', `${rec.spec.name} did not answer in ${this.policy.callTimeoutMs} ms`)), this.policy.callTimeoutMs);
      rec.pending.add(fail);
      fn().then(
        (v) => {
          timer.cancel();
          rec.pending.delete(fail);
          resolve(v);
        },
        (err) => fail(err),
      );
    });
  }

  private prepareSpare(rec: ActorRecord): void {
    if (!this.policy.warmSpares || this.stopping || rec.spare || rec.state === 'failed') return;
    const spare = loadWorker(rec.spec);
    spare.catch((err) => {
      if (rec.spare === spare) rec.spare = undefined;
      this.log.warn({ actor: rec.spec.name, err: err.message }, 'spare worker failed to load');
    });
    rec.spare = spare;
  }

  /** Turns a loaded worker into the running actor: wires its peers and waits for its start. */
  private async activate(rec: ActorRecord, loaded: Loaded, incarnation: number): Promise<void> {
    const peers: Array<{ name: string; remote: Comlink.Remote<ControlApi> }> = [];
    for (const name of this.peersOf(rec.spec.name)) {
      const peer = this.records.get(name)!;
      if (peer.state === 'running' && peer.remote) peers.push({ name, remote: peer.remote });
    }
    const { remote, attachPeers } = await activateWorker(rec.spec, loaded, {
      clock: this.opts.clock,
      counters: rec.counters,
      logLevel: this.opts.logLevel ?? 'info',
      incarnation,
      faults: Boolean(this.opts.faults),
      peers,
      onEvent: (ev) => this.opts.onEvent?.(rec.spec.name, ev),
    });
    const { worker } = loaded;
    rec.worker = worker;
    rec.remote = remote;
    rec.readyAt = this.clock.now();
    rec.state = 'running';
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    worker.on('error', (err) => {
      rec.lastError = err?.message ?? String(err);
    });
    worker.on('exit', (code) => this.onExit(rec, worker, code));
    this.announce(rec);
    await attachPeers();
    for (const w of rec.waiters.splice(0)) w();
  }

  private peersOf(name: string): string[] {
    return this.links.flatMap(([a, b]) => (a === name ? [b] : b === name ? [a] : []));
  }

  private onExit(rec: ActorRecord, worker: Worker, code: number): void {
    if (rec.worker !== worker) return;
    rec.worker = undefined;
    rec.remote = undefined;
    const pending = [...rec.pending];
    rec.pending.clear();
    for (const fail of pending) fail(new RuntimeError('ACTOR_UNAVAILABLE', `${rec.spec.name} exited while serving a call`));
    if (this.stopping || rec.state === 'stopping' || rec.state === 'stopped') return;
    rec.lastError ??= `exited with code ${code}`;
    this.crashed(rec, code);
  }

  /** A crash, or a restart that failed to start: back off and restart, or give up past the intensity. */
  private crashed(rec: ActorRecord, code: number): void {
    const decision = decideRestart(rec.restartTimes, this.clock.now(), this.policy);
    rec.restartTimes = decision.history;
    if (decision.action === 'give-up') {
      rec.state = 'failed';
      this.log.error({ actor: rec.spec.name, restarts: decision.recent, window_ms: this.policy.restartWindowMs, last_error: rec.lastError }, 'actor failed: too many restarts');
      this.announce(rec);
      const spare = rec.spare;
      rec.spare = undefined;
      spare?.then(
        (l) => l.worker.terminate(),
        () => undefined,
      );
      return;
    }
    rec.state = 'restarting';
    this.announce(rec);
    this.log.warn({ actor: rec.spec.name, code, delay_ms: decision.delayMs, last_error: rec.lastError }, 'actor crashed; restarting');
    rec.restartTimer = this.clock.setTimeout(() => void this.restart(rec), decision.delayMs);
  }

  private async restart(rec: ActorRecord): Promise<void> {
    if (this.stopping) return;
    try {
      const spare = rec.spare;
      rec.spare = undefined;
      const loaded = (await spare?.catch(() => undefined)) ?? (await loadWorker(rec.spec));
      rec.restarts++;
      await this.activate(rec, loaded, rec.restarts);
      this.log.info({ actor: rec.spec.name, restarts: rec.restarts, thread: loaded.worker.threadId }, 'actor restarted');
      this.prepareSpare(rec);
    } catch (err) {
      rec.lastError = (err as Error).message;
      this.log.error({ actor: rec.spec.name, err: rec.lastError }, 'actor restart failed');
      // A failed start counts as a crash: back off and try again, or give up past the intensity.
      rec.worker = undefined;
      rec.remote = undefined;
      if (!this.stopping) this.crashed(rec, 1);
    }
  }
}

export interface ActorHandle<M extends RequestMap> {
  call<K extends keyof M & string>(type: K, body: M[K]['req']): Promise<M[K]['res']>;
}

function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = clock.setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        t.cancel();
        resolve(v);
      },
      (e) => {
        t.cancel();
        reject(e);
      },
    );
  });
}
