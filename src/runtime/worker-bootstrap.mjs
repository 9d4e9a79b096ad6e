// Entry of every actor's worker thread. Plain JavaScript so that Node starts it the same way
// whether barkeep runs from .ts sources (under tsx) or from compiled .js: when the actor module is
// TypeScript, register tsx first, then load the actor and hand it to the host.
import { workerData } from 'node:worker_threads';

const boot = workerData;
if (boot.module.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
// The build bundles each actor with its host (scripts/build.mjs): one file to load, which exports
// `hostActor` itself; otherwise the host is the runtime's own module.
const actor = await import(boot.module);
const { hostActor } = actor.hostActor ? actor : await import(boot.host);
hostActor(actor.default, boot);
