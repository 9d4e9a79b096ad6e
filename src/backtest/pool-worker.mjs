// Entry of every backtest pool (piscina) worker. Plain JavaScript, like the actors' bootstrap
// (src/runtime/worker-bootstrap.mjs): when the task module is TypeScript, register tsx first, then
// load it and hand its default export to piscina.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ts = new URL('./task.ts', import.meta.url);
const target = existsSync(fileURLToPath(ts)) ? ts : new URL('./task.js', import.meta.url);
if (target.pathname.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { default: task } = await import(target.href);
export default task;
