/** Webhooks against a real HTTP server on 127.0.0.1 that fails the first deliveries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createNotifier } from '../../src/notify/webhook.ts';

interface Hook {
  url: string;
  received: Array<{ attempt: number; status: number; body: any }>;
  /** Resolves when `n` deliveries have been answered 2xx. */
  delivered(n: number): Promise<void>;
  close(): Promise<void>;
}

/** Answers 503 to the first `failFirst` requests, then 204. */
async function hook(failFirst: number): Promise<Hook> {
  const received: Hook['received'] = [];
  let ok = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const attempt = received.length + 1;
    const status = attempt <= failFirst ? 503 : 204;
    received.push({ attempt, status, body: JSON.parse(text) });
    res.writeHead(status).end();
    if (status === 204) ok++;
    for (const w of waiters.filter((w) => ok >= w.n)) w.resolve();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    delivered: (n) => (ok >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const quiet = { warn() {} };

test('a webhook that fails the first deliveries gets the event on a retry, once', async () => {
  const h = await hook(2);
  const n = createNotifier({ webhooks: [h.url], maxAttempts: 5, retryInitialMs: 20, timeoutMs: 2000 }, quiet);
  n.send('fill', { symbol: 'QQQ', side: 'buy', qty: 10, price: 101.25 });
  await h.delivered(1);
  await n.close();
  await h.close();
  assert.deepEqual(
    h.received.map((r) => r.status),
    [503, 503, 204],
  );
  for (const r of h.received) {
    assert.equal(r.body.event, 'fill');
    assert.equal(r.body.source, 'barkeep');
    assert.deepEqual(r.body.data, { symbol: 'QQQ', side: 'buy', qty: 10, price: 101.25 });
  }
  assert.deepEqual(n.counters, { delivered: 1, retried: 2, dropped: 0 });
});

test('send never waits for the webhook: it returns before the server has answered', async () => {
  const h = await hook(0);
  const n = createNotifier({ webhooks: [h.url], maxAttempts: 2, retryInitialMs: 20, timeoutMs: 2000 }, quiet);
  n.send('kill_switch', { flatten: true });
  assert.equal(h.received.length, 0, 'nothing has reached the server when send returns');
  await h.delivered(1);
  await n.close();
  await h.close();
  assert.equal(h.received[0].body.event, 'kill_switch');
});

test('a delivery that keeps failing is dropped after max_attempts, counted and logged without the URL path', async () => {
  const h = await hook(100);
  const warnings: Array<{ obj: any; msg: string }> = [];
  const n = createNotifier({ webhooks: [`${h.url}?token=abc`], maxAttempts: 3, retryInitialMs: 10, timeoutMs: 2000 }, { warn: (obj, msg) => warnings.push({ obj, msg }) });
  n.send('actor_failed', { actor: 'trader' });
  while (n.counters.dropped === 0) await new Promise((r) => setTimeout(r, 10));
  await n.close();
  await h.close();
  assert.equal(h.received.length, 3);
  assert.equal(warnings.length, 1);
  assert.ok(!JSON.stringify(warnings).includes('abc'), 'the URL query (a token) is not logged');
});

test('secret-looking fields never reach a webhook body', async () => {
  const h = await hook(0);
  const n = createNotifier({ webhooks: [h.url], maxAttempts: 1, retryInitialMs: 10, timeoutMs: 2000 }, quiet);
  n.send('collection_failed', { source: 'massive', code: 'AUTH', api_key: 'k-123', nested: { apiToken: 't-456', symbol: 'QQQ' } });
  await h.delivered(1);
  await n.close();
  await h.close();
  const text = JSON.stringify(h.received[0].body);
  assert.ok(!text.includes('k-123') && !text.includes('t-456'), text);
  assert.deepEqual(h.received[0].body.data, { source: 'massive', code: 'AUTH', nested: { symbol: 'QQQ' } });
});
