/**
 * The engine's three actors (their modules) and the warm start of their threads: `barkeep serve`
 * starts loading each actor's worker as soon as the config is read, so the actors' code loads in
 * parallel with the main thread's own (the HTTP server, the storage), and the supervisor activates
 * the already-loaded workers (spare-pool.ts). Only loading happens early: nothing opens the data
 * directory before the engine has taken its lock (storage/data-dir-lock.ts).
 */
import { fileURLToPath } from 'node:url';
import { distIsFresh } from '../../bin/dist-fresh.mjs';
import type { ActorSpec } from '../runtime/actor-worker.ts';
import { SparePool } from '../runtime/spare-pool.ts';

/**
 * The build's module when running dist/. Running the sources (tsx: tests, benchmarks, `barkeep`
 * after an edit), the build's bundled module still serves when dist/ is fresh (built after the
 * last change to any source, bin/dist-fresh.mjs: the same code), so an actor's thread and its warm
 * spares load in a fraction of the time tsx takes to compile the actor's sources in every thread.
 * BARKEEP_FROM_SOURCE=1 keeps the sources.
 */
function actorModule(name: string): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL(`../actors/${name}/actor.js`, import.meta.url);
  const root = new URL('../../', import.meta.url);
  if (process.env.BARKEEP_FROM_SOURCE !== '1' && distIsFresh(fileURLToPath(root))) return new URL(`dist/actors/${name}/actor.js`, root);
  return new URL(`../actors/${name}/actor.ts`, import.meta.url);
}

export const ACTOR_MODULES = {
  collector: actorModule('collector'),
  arbiter: actorModule('arbiter'),
  trader: actorModule('trader'),
};

/** The actors in start order, with their peers (config filled in by the engine). */
export function actorSpecs(configs: { collector: unknown; arbiter: unknown; trader: unknown }): ActorSpec[] {
  return [
    { name: 'collector', module: ACTOR_MODULES.collector, config: configs.collector, peers: ['arbiter'] },
    { name: 'arbiter', module: ACTOR_MODULES.arbiter, config: configs.arbiter, peers: ['collector', 'trader'] },
    { name: 'trader', module: ACTOR_MODULES.trader, config: configs.trader, peers: ['arbiter'] },
  ];
}

/** Starts loading a worker for each actor (logging at `logLevel`); hand the pool to startEngine (or close it). */
export function preloadActors(logLevel: string): SparePool {
  const pool = new SparePool({ logLevel });
  for (const spec of actorSpecs({ collector: null, arbiter: null, trader: null })) pool.fill(spec);
  return pool;
}
