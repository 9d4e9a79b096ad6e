/**
 * Warm spares: per actor, a worker thread that has already loaded the actor's code and waits to be
 * activated (actor-worker.ts). Loading a worker (thread start, module graph, tsx when running the
 * sources) is most of what a cold start or a restart would otherwise wait for, so the supervisor
 * takes a restarted actor's thread from here and loads the next spare behind it; `barkeep serve`
 * fills the pool before the engine's own modules load, so the actors' code loads in parallel with
 * the main thread's.
 */
import { loadWorker, type ActorSpec, type Loaded } from './actor-worker.ts';

/** A worker taken from the pool, and whether it had finished loading before it was asked for. */
export interface Taken {
  loaded: Loaded;
  /** True when the spare was loaded already: the caller waited for nothing. */
  warm: boolean;
}

interface Spare {
  loading: Promise<Loaded>;
  ready: boolean;
  threadId: number | null;
}

/** An actor's spare: none, loading, or loaded (with the thread it waits in). */
export interface SpareState {
  state: 'none' | 'loading' | 'ready';
  thread_id: number | null;
}

export class SparePool {
  private readonly spares = new Map<string, Spare>();
  private closed = false;

  /** `logLevel`: the level the actors will log at (their loggers are built while they wait). */
  constructor(private readonly opts: { logLevel?: string } = {}) {}

  /** Told when a spare fails to load (the supervisor logs it). */
  onError: (actor: string, err: Error) => void = () => undefined;

  /** Starts loading a spare for the actor unless it has one (loading or loaded). */
  fill(spec: ActorSpec): void {
    if (this.closed || this.spares.has(spec.name)) return;
    const spare: Spare = { loading: loadWorker(spec, this.opts), ready: false, threadId: null };
    spare.loading.then(
      (l) => {
        spare.ready = true;
        spare.threadId = l.worker.threadId;
      },
      (err: Error) => {
        if (this.spares.get(spec.name) === spare) this.spares.delete(spec.name);
        this.onError(spec.name, err);
      },
    );
    this.spares.set(spec.name, spare);
  }

  /** Whether the actor has a spare, and whether it has finished loading. */
  state(name: string): SpareState {
    const s = this.spares.get(name);
    return { state: !s ? 'none' : s.ready ? 'ready' : 'loading', thread_id: s?.threadId ?? null };
  }

  /** The actor's spare (waiting for it if it is still loading), or a worker loaded now. */
  async take(spec: ActorSpec): Promise<Taken> {
    const spare = this.spares.get(spec.name);
    this.spares.delete(spec.name);
    if (spare) {
      const warm = spare.ready;
      const loaded = await spare.loading.catch(() => undefined);
      if (loaded) return { loaded, warm };
    }
    return { loaded: await loadWorker(spec, this.opts), warm: false };
  }

  /** Ends the actor's spare, if any (an actor given up on keeps no thread). */
  discard(name: string): void {
    const spare = this.spares.get(name);
    this.spares.delete(name);
    spare?.loading.then(
      (l) => l.worker.terminate(),
      () => undefined,
    );
  }

  /** Ends every spare and loads no more. */
  close(): void {
    this.closed = true;
    for (const name of [...this.spares.keys()]) this.discard(name);
  }
}
