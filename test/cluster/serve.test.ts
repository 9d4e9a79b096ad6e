/**
 * Cluster mode through the public surface: nats-server with JetStream and three `barkeep serve`
 * processes on the simulated market, each with its own port and data directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNats } from '../helpers/nats.ts';
import { runCli, serve, until, type Served } from '../helpers/serve.ts';

const SYMBOLS = ['AAPL', 'MSFT', 'QQQ', 'SPY', 'IWM', 'NVDA'];
const list = `[${SYMBOLS.join(', ')}]`;

function yaml(natsUrl: string, nodeId: string): string {
  return [
    'runtime:',
    '  clock: accelerated',
    '  clock_speed: 60',
    '  clock_start: "2026-01-05T15:00:00Z"',
    'cluster:',
    '  enabled: true',
    `  nats_url: ${natsUrl}`,
    `  node_id: ${nodeId}`,
    '  lease_ttl_s: 2',
    'collector:',
    `  symbols: ${list}`,
    'trader:',
    `  symbols: ${list}`,
    '',
  ].join('\n');
}

async function owners(nodes: Served[]): Promise<Map<string, string> | false> {
  const owner = new Map<string, string>();
  for (const n of nodes) {
    const r = await n.get('/cluster');
    if (r.status !== 200) return false;
    for (const s of r.body.owned as string[]) {
      if (owner.has(s)) return false;
      owner.set(s, r.body.node_id);
    }
  }
  return owner.size === SYMBOLS.length ? owner : false;
}

test('a cluster node refuses to start when NATS is unreachable, saying so in one line', async () => {
  const r = await runCli(['serve'], { yaml: yaml('nats://127.0.0.1:1', 'n1'), env: { BARKEEP_PORT: '0' }, timeoutMs: 30_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr + r.stdout, /cluster: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
});

test('three nodes split the symbols, every cache holds every symbol, and a SIGKILLed node\'s symbols move', async () => {
  await using nats = await startNats();
  const nodes: Served[] = [];
  try {
    for (const id of ['node-1', 'node-2', 'node-3']) nodes.push(await serve({ yaml: yaml(nats.url, id) }));
    const split = await until(() => owners(nodes), 'the symbols split over three nodes with no overlap', 30_000);
    const status = (await nodes[0].get('/cluster')).body;
    assert.deepEqual(status.members.map((m: { node_id: string }) => m.node_id), ['node-1', 'node-2', 'node-3']);
    assert.deepEqual(Object.keys(status.leases).sort(), [...SYMBOLS].sort());
    for (const n of nodes) assert.ok((await n.get('/cluster')).body.owned.length > 0);

    // Each node collects only what it owns, yet every cache holds bars of every symbol.
    for (const n of nodes) {
      const collecting = (await n.get('/data-collector/status')).body.symbols as string[];
      const owned = (await n.get('/cluster')).body.owned as string[];
      assert.deepEqual([...collecting].sort(), [...owned].sort());
      await until(
        async () => {
          for (const s of SYMBOLS) if ((await n.get(`/bars/${s}?limit=5`)).body.bars?.length !== 5) return false;
          return true;
        },
        'every symbol\'s bars in this node\'s cache',
        40_000,
      );
    }
    const metrics = (await nodes[0].get('/metrics')).body as string;
    assert.match(metrics, /barkeep_cluster_bars_replicated_total \d+/);

    // SIGKILL node-3: its symbols move to the others (lease TTL 2 s).
    const lost = [...split].filter(([, o]) => o === 'node-3').map(([s]) => s);
    await nodes[2].stop('SIGKILL');
    const after = await until(() => owners(nodes.slice(0, 2)), 'node-3\'s symbols taken over', 10_000);
    for (const s of lost) assert.notEqual(after.get(s), 'node-3');
  } finally {
    for (const n of nodes) await n[Symbol.asyncDispose]().catch(() => undefined);
  }
});
