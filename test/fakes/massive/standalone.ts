/**
 * The Massive fake in its own process (for benchmarks, so the client's CPU time is measured alone,
 * and for trying `barkeep check massive` by hand):
 *   node --import tsx test/fakes/massive/standalone.ts [--port 8899] [--key test-key] [--rate 5]
 * Serves generated bars for any symbol. Under `fork()` it sends `{ url }` to the parent and exits
 * when the parent disconnects.
 */
import { parseArgs } from 'node:util';
import { startFakeMassive } from './server.ts';

const { values } = parseArgs({
  options: { key: { type: 'string' }, rate: { type: 'string' }, 'page-size': { type: 'string' } },
});
const fake = await startFakeMassive({
  validKeys: [values.key ?? 'test-key'],
  generate: true,
  ...(values.rate ? { rateLimit: { limit: Number(values.rate) } } : {}),
  ...(values['page-size'] ? { pageSize: Number(values['page-size']) } : {}),
});
if (process.send) {
  process.send({ url: fake.url });
  process.on('disconnect', () => void fake.close().then(() => process.exit(0)));
} else {
  process.stdout.write(`fake Massive on ${fake.url} (MASSIVE_REST_URL=${fake.url})\n`);
  process.on('SIGINT', () => void fake.close().then(() => process.exit(0)));
}
