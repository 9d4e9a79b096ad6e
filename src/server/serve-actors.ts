/**
 * The engine's three actors (their modules) and the warm start of their threads: `barkeep serve`
 * starts loading each actor's worker as soon as the config is read, so the actors' code loads in
 * parallel with the main thread's own (the HTTP server, the storage), and the supervisor activates
 * the already-loaded workers (spare-pool.ts). Only loading happens early: nothing opens the data
 * directory before the engine has taken its lock (storage/data-dir-lock.ts).
 */
import type { ActorSpec } from '../runtime/actor-worker.ts';
import { SparePool } from '../runtime/spare-pool.ts';

/** .ts when running the sources (tsx), .js when running the build in dist/. */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

export const ACTOR_MODULES = {
  collector: new URL(`../actors/collector/actor${EXT}`, import.meta.url),
  arbiter: new URL(`../actors/arbiter/actor${EXT}`, import.meta.url),
  trader: new URL(`../actors/trader/actor${EXT}`, import.meta.url),
};

/** The actors in start order, with their peers (config filled in by the engine). */
export function actorSpecs(configs: { collector: unknown; arbiter: unknown; trader: unknown }): ActorSpec[] {
  return [
    { name: 'collector', module: ACTOR_MODULES.collector, config: configs.collector, peers: ['arbiter'] },
    { name: 'arbiter', module: ACTOR_MODULES.arbiter, config: configs.arbiter, peers: ['collector', 'trader'] },
    { name: 'trader', module: ACTOR_MODULES.trader, config: configs.trader, peers: ['arbiter'] },
  ];
}

/** Starts loading a worker for each actor; hand the pool to startEngine (or close it). */
export function preloadActors(): SparePool {
  const pool = new SparePool();
  for (const spec of actorSpecs({ collector: null, arbiter: null, trader: null })) pool.fill(spec);
  return pool;
}
