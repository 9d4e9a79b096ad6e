/**
 * The worker side of an actor: waits to be activated, builds the context, runs the definition's
 * `start`, and serves control calls over comlink. A control request of an unknown type, or one
 * whose handler throws, fails that one call (counted and logged), never the actor.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, threadId, type MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { ActorContext, ActorDefinition, ActorInstance } from './actor.ts';
import { clockFromSpec } from './clock.ts';
import { COUNTER, counterView } from './counters.ts';
import { eventEmitter } from './events.ts';
import { createLogger, type Logger } from './log.ts';
import { PeerLink } from './peer-link.ts';
import type { PeerMessage, RequestMap } from './protocol.ts';
import type { Activation, CallResult, ControlApi, WorkerBoot } from './wire.ts';

function errorResult(err: unknown, fallback: string): CallResult {
  const e = err as { code?: unknown; message?: unknown; field?: unknown };
  return {
    ok: false,
    error: {
      code: typeof e?.code === 'string' ? e.code : fallback,
      message: typeof e?.message === 'string' ? e.message : String(err),
      ...(typeof e?.field === 'string' ? { field: e.field } : {}),
    },
  };
}

export function hostActor(def: ActorDefinition<RequestMap, unknown>, boot: WorkerBoot): void {
  const port = parentPort;
  if (!port) throw new Error('hostActor must run in a worker thread');
  // Built while the thread waits to be activated (pino compiles its redaction paths): an
  // activation at that level, a restart's or a cold start's, does not pay for it.
  const early = boot.logLevel ? createLogger({ level: boot.logLevel }) : null;
  port.once('message', (msg: Activation) => {
    activate(def, boot, msg, early && msg.logLevel === boot.logLevel ? early : null).catch((err) => {
      port.postMessage({ type: 'start-failed', message: String(err?.message ?? err), code: err?.code });
      // Let the message flush before the thread ends.
      setTimeout(() => process.exit(1), 10);
    });
  });
  port.postMessage({ type: 'loaded' });
}

async function activate(def: ActorDefinition<RequestMap, unknown>, boot: WorkerBoot, act: Activation, early: Logger | null): Promise<void> {
  const counters = counterView(act.counters);
  const log = (early ?? createLogger({ level: act.logLevel })).child({ actor: boot.name, thread: threadId });
  const clock = clockFromSpec(act.clock);
  const links = new Map<string, PeerLink<PeerMessage, PeerMessage>>();
  const linkFor = (name: string) => {
    let link = links.get(name);
    if (!link) {
      link = new PeerLink(name, counters, log);
      links.set(name, link);
    }
    return link;
  };
  for (const [name, p] of Object.entries(act.peers)) linkFor(name).attach(p);

  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const lagTimer = setInterval(() => {
    counters[COUNTER.loopLagMeanMs] = lag.mean / 1e6;
    counters[COUNTER.loopLagMaxMs] = lag.max / 1e6;
    lag.reset();
  }, 1000);
  lagTimer.unref();
  // The thread's heap and busy time, for whoever watches its memory and load (bench/stream.ts).
  const usageTimer = setInterval(() => {
    const heap = getHeapStatistics();
    counters[COUNTER.heapUsedBytes] = heap.used_heap_size;
    counters[COUNTER.externalBytes] = heap.external_memory;
    counters[COUNTER.heapPhysicalBytes] = heap.total_physical_size;
    counters[COUNTER.activeMs] = performance.eventLoopUtilization().active;
  }, 200);
  usageTimer.unref();

  const ctx: ActorContext<unknown> = {
    name: boot.name,
    config: act.config,
    clock,
    log,
    incarnation: act.incarnation,
    peer: (name) => linkFor(name) as never,
    emit: eventEmitter(
      act.events,
      () => clock.now(),
      () => counters[COUNTER.failedMessages]++,
    ),
  };
  const instance: ActorInstance<RequestMap> = await def.start(ctx);
  const handlers = instance.handlers as Record<string, (req: object) => unknown>;

  const api: ControlApi = {
    async request(msg) {
      counters[COUNTER.messagesIn]++;
      const type = (msg as { type?: unknown } | null)?.type;
      if (typeof type !== 'string') {
        counters[COUNTER.failedMessages]++;
        log.warn({ msg: typeof msg }, 'control request without a type refused');
        return { ok: false, error: { code: 'ACTOR_BAD_MESSAGE', message: 'a request needs a string `type`' } };
      }
      const handler = Object.hasOwn(handlers, type) ? handlers[type] : undefined;
      if (!handler) {
        counters[COUNTER.failedMessages]++;
        log.warn({ type }, 'control request of unknown type refused');
        return {
          ok: false,
          error: { code: 'ACTOR_UNKNOWN_MESSAGE', message: `${boot.name} does not handle requests of type "${type}"` },
        };
      }
      try {
        const { type: _t, ...body } = msg as { type: string };
        const value = await handler(body);
        counters[COUNTER.messagesOut]++;
        return { ok: true, value };
      } catch (err) {
        counters[COUNTER.failedMessages]++;
        log.warn({ type, err }, 'control request failed');
        return errorResult(err, 'ACTOR_HANDLER_ERROR');
      }
    },
    attachPeer(name, p: MessagePort) {
      linkFor(name).attach(p);
      log.debug({ peer: name }, 'peer link attached');
    },
    metrics() {
      return instance.metrics?.() ?? [];
    },
    async stop() {
      try {
        await instance.stop?.();
      } finally {
        clearInterval(lagTimer);
        clearInterval(usageTimer);
        for (const link of links.values()) link.detach();
        act.events?.close();
        log.flush();
      }
    },
    crash() {
      if (!act.faults) return false;
      log.warn('drill: crashing on request');
      setImmediate(() => {
        throw new Error(`drill: ${boot.name} crashed on request`);
      });
      return true;
    },
  };
  Comlink.expose(api, nodeEndpoint(act.controlPort as never));
  counters[COUNTER.readyAt] = Date.now();
  parentPort!.postMessage({ type: 'ready' });
}
