// Entry of every actor's worker thread. Plain JavaScript so that Node starts it the same way
// whether barkeep runs from .ts sources (under tsx) or from compiled .js: when the actor module is
// TypeScript, register tsx first, then load the actor and hand it to the host.
import { workerData } from 'node:worker_threads';

const boot = workerData;
if (boot.module.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
const [{ default: definition }, { hostActor }] = await Promise.all([import(boot.module), import(boot.host)]);
hostActor(definition, boot);
