/**
 * The supervisor: starts each actor in its own worker thread, wires the actors' peer ports, serves
 * typed control calls to them, and restarts one that crashes (one-for-one).
 *
 * Lifecycle of an actor: starting -> running -> (crash) restarting -> running, or -> failed once it
 * has crashed more than `maxRestarts` times inside `restartWindowMs`; stopping -> stopped on shutdown.
 *
 * Its parts, one job each: when to restart (restart-policy.ts, a pure function of the injected
 * clock's time), the warm spares a restart takes its thread from (spare-pool.ts), which actors are
 * linked (peer-wiring.ts), activating a loaded worker (actor-worker.ts), and calls that fail rather
 * than hang (call-guard.ts).
 */
import { performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import type * as Comlink from 'comlink';
import { RealClock, type Clock, type TimerHandle } from '../market/clock.ts';
import { activateWorker, type ActorSpec, type Loaded } from './actor-worker.ts';
import { PendingCalls, withTimeout } from './call-guard.ts';
import type { ClockSpec } from './clock.ts';
import type { EventSink } from './events.ts';
import { COUNTER, counterView, newCounterBuffer } from './counters.ts';
import type { Logger } from './log.ts';
import { PeerWiring } from './peer-wiring.ts';
import { ActorCallError, RuntimeError, type ActorState, type MetricSample, type RequestMap } from './protocol.ts';
import type { ActorHandle, ActorInfo, StartTiming } from './supervisor-types.ts';
import { DEFAULT_POLICY, decideRestart, type SupervisorPolicy } from './restart-policy.ts';
import { SparePool, type SpareState } from './spare-pool.ts';
import type { ControlApi } from './wire.ts';

export type { ActorSpec } from './actor-worker.ts';
export type { ActorHandle, ActorInfo, StartTiming } from './supervisor-types.ts';
export { DEFAULT_POLICY, type SupervisorPolicy } from './restart-policy.ts';

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
  /**
   * Workers already loading for these actors (`barkeep serve` fills it before the engine's modules
   * load); the supervisor takes it over and closes it on stop. Default: a pool of its own.
   */
  spares?: SparePool;
}

interface ActorRecord {
  spec: ActorSpec;
  state: ActorState;
  worker?: Worker;
  remote?: Comlink.Remote<ControlApi>;
  counters: SharedArrayBuffer;
  restarts: number;
  restartTimes: number[];
  lastError: string | null;
  readyAt: number | null;
  restartTimer?: TimerHandle;
  /** Resolves when the current (or last lost) thread has exited: a restart waits for it. */
  exited: Promise<void>;
  pending: PendingCalls;
  timing: StartTiming | null;
  /** Resolves when the actor is next running (used by tests and drills). */
  waiters: Array<() => void>;
}

export class Supervisor {
  private readonly records = new Map<string, ActorRecord>();
  private readonly wiring: PeerWiring;
  private readonly spares: SparePool;
  private readonly policy: SupervisorPolicy;
  private readonly log: Logger;
  private readonly clock: Clock;
  private stopping = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.policy = { ...DEFAULT_POLICY, ...opts.policy };
    this.log = opts.log.child({ component: 'supervisor' });
    this.clock = opts.supervisionClock ?? new RealClock();
    this.wiring = new PeerWiring(opts.actors);
    this.spares = opts.spares ?? new SparePool({ logLevel: opts.logLevel ?? 'info' });
    this.spares.onError = (actor, err) => this.log.warn({ actor, err: err.message }, 'spare worker failed to load');
    for (const spec of opts.actors) {
      this.records.set(spec.name, {
        spec,
        state: 'stopped',
        counters: newCounterBuffer(),
        restarts: 0,
        restartTimes: [],
        lastError: null,
        readyAt: null,
        exited: Promise.resolve(),
        pending: new PendingCalls(),
        timing: null,
        waiters: [],
      });
    }
  }

  /** Starts every actor, in the order given, and waits until all run. */
  async start(): Promise<void> {
    // Every worker loads its modules at once (the slow part of a cold start; the pool may have
    // started them already); they are then activated one by one, in the order given.
    const records = [...this.records.values()];
    for (const rec of records) this.spares.fill(rec.spec);
    try {
      for (const rec of records) {
        rec.state = 'starting';
        await this.activate(rec, 0);
      }
    } catch (err) {
      // Workers loaded for actors that will never be activated must not keep the process alive.
      this.spares.close();
      throw err;
    }
    for (const rec of records) this.prepareSpare(rec);
  }

  /** Where the time of each actor's latest start or restart went. */
  timings(): StartTiming[] {
    return [...this.records.values()].flatMap((rec) => (rec.timing ? [{ ...rec.timing }] : []));
  }

  /** The worker the actor's next restart would take: none, loading, or loaded and waiting. */
  spare(name: string): SpareState {
    return this.spares.state(this.record(name).spec.name);
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

  /** Runtime counters of an actor (messages in/out, failed, event-loop lag, its thread's heap). */
  counters(name: string): {
    messagesIn: number;
    messagesOut: number;
    failed: number;
    lagMeanMs: number;
    lagMaxMs: number;
    heapUsedBytes: number;
    heapPhysicalBytes: number;
    externalBytes: number;
    activeMs: number;
  } {
    const c = counterView(this.record(name).counters);
    return {
      messagesIn: c[COUNTER.messagesIn],
      messagesOut: c[COUNTER.messagesOut],
      failed: c[COUNTER.failedMessages],
      lagMeanMs: c[COUNTER.loopLagMeanMs],
      lagMaxMs: c[COUNTER.loopLagMaxMs],
      heapUsedBytes: c[COUNTER.heapUsedBytes],
      heapPhysicalBytes: c[COUNTER.heapPhysicalBytes],
      externalBytes: c[COUNTER.externalBytes],
      activeMs: c[COUNTER.activeMs],
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
    const { worker, remote } = rec;
    // The thread may die before its answer arrives: that is the drill working, not a failure.
    await this.guarded(rec, () => remote.crash()).catch((err: unknown) => {
      if (rec.worker === worker) throw err;
    });
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
    this.spares.close();
    for (const rec of [...this.records.values()].reverse()) {
      rec.restartTimer?.cancel();
      const { worker, remote } = rec;
      if (!worker || !remote) {
        rec.state = rec.state === 'failed' ? 'failed' : 'stopped';
        continue;
      }
      rec.state = 'stopping';
      const remaining = Math.max(100, deadline - this.clock.now());
      try {
        await withTimeout(this.clock, remote.stop(), remaining, `${rec.spec.name} did not stop in time`);
      } catch (err) {
        this.log.warn({ actor: rec.spec.name, err: (err as Error).message }, 'actor stop failed; terminating');
      }
      await worker.terminate();
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
    return rec.pending.run(this.clock, rec.spec.name, this.policy.callTimeoutMs, fn);
  }

  private prepareSpare(rec: ActorRecord): void {
    if (!this.policy.warmSpares || this.stopping || rec.state === 'failed') return;
    this.spares.fill(rec.spec);
  }

  /** Turns a loaded worker into the running actor: wires its peers and waits for its start. */
  private async activate(rec: ActorRecord, incarnation: number): Promise<Loaded> {
    const asked = performance.now();
    const { loaded, warm } = await this.spares.take(rec.spec);
    const got = performance.now();
    const peers: Array<{ name: string; remote: Comlink.Remote<ControlApi> }> = [];
    for (const name of this.wiring.peersOf(rec.spec.name)) {
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
    // Recorded with the state: whoever sees it running (whenRunning) sees how this start went.
    rec.timing = { actor: rec.spec.name, incarnation, warm, wait_ms: warm ? 0 : got - asked, load_ms: loaded.loadMs, activate_ms: performance.now() - got };
    rec.state = 'running';
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    rec.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    // An uncaught error ends the thread: the restart's backoff starts now, while the thread is
    // torn down (tens of ms on a busy machine), and the restart waits for its exit.
    worker.on('error', (err) => {
      rec.lastError = err?.message ?? String(err);
      this.lost(rec, worker, 1);
    });
    worker.on('exit', (code) => this.lost(rec, worker, code));
    this.announce(rec);
    await attachPeers();
    for (const w of rec.waiters.splice(0)) w();
    return loaded;
  }

  /** The actor's thread died (an uncaught error) or exited: fail its calls, then restart it or give up. */
  private lost(rec: ActorRecord, worker: Worker, code: number): void {
    if (rec.worker !== worker) return;
    rec.worker = undefined;
    rec.remote = undefined;
    rec.pending.failAll(new RuntimeError('ACTOR_UNAVAILABLE', `${rec.spec.name} exited while serving a call`));
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
      this.spares.discard(rec.spec.name);
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
      rec.restarts++;
      // Never two incarnations at once: the lost thread has exited before the new one starts.
      await rec.exited;
      if (this.stopping) return;
      const loaded = await this.activate(rec, rec.restarts);
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
