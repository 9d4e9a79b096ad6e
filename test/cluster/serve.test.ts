/**
 * Cluster mode through the public surface: nats-server with JetStream and three `barkeep serve`
 * processes on the simulated market, each with its own port and data directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startNats } from '../helpers/nats.ts';
import { runCli, serve, until, type Served } from '../helpers/serve.ts';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { OrderFence } from '../../src/cluster/order-fence.ts';

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
    '  lease_ttl_s: 3',
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

/** Every order was appended by the node holding the symbol's lease at that point of the stream, once. */
async function assertFencedOrders(natsUrl: string, nodes: Served[]): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const fence = new OrderFence(jetstream(nc), jsm, 'observer');
    let placed = 0;
    const ids = new Set<string>();
    for (const s of SYMBOLS) {
      let holder: string | null = null;
      for (const { event } of await fence.history(s)) {
        if (event.type === 'lease') holder = event.node_id;
        else {
          placed++;
          assert.equal(event.node_id, holder, `${event.client_order_id} for ${s} appended by the lease holder`);
          assert.ok(!ids.has(event.client_order_id!), `${event.client_order_id} appears once`);
          ids.add(event.client_order_id!);
        }
      }
    }
    // Orders the fence refused are journaled as rejected and never reached the broker.
    let made = 0;
    const refused: string[] = [];
    for (const n of nodes) {
      for (const o of (await n.get('/orders')).body.orders ?? []) {
        if (o.state === 'rejected') refused.push(`${o.client_order_id}: ${o.reject_reason ?? o.reason}`);
        else made++;
      }
    }
    assert.ok(placed >= made && made > 0, `${placed} fenced appends for ${made} orders sent; refused: ${refused.join('; ')}`);
  } finally {
    await nc.close();
  }
}

test('a cluster node refuses to start when NATS is unreachable, saying so in one line', async () => {
  const r = await runCli(['serve'], { yaml: yaml('nats://127.0.0.1:1', 'n1'), env: { BARKEEP_PORT: '0' }, timeoutMs: 30_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr + r.stdout, /cluster: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
});

test("three nodes split the symbols, every cache holds every symbol, and a SIGKILLed node's symbols move", async () => {
  await using nats = await startNats();
  const nodes: Served[] = [];
  try {
    for (const id of ['node-1', 'node-2', 'node-3']) nodes.push(await serve({ yaml: yaml(nats.url, id), timeoutMs: 90_000 }));
    const split = await until(() => owners(nodes), 'the symbols split over three nodes with no overlap', 30_000);
    const status = (await nodes[0].get('/cluster')).body;
    assert.deepEqual(
      status.members.map((m: { node_id: string }) => m.node_id),
      ['node-1', 'node-2', 'node-3'],
    );
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
        "every symbol's bars in this node's cache",
        40_000,
      );
    }
    // Trading: every order was appended to orders.<symbol> before the broker saw it, by the node that
    // held the symbol's lease at that point of the stream, and no client order id appears twice.
    await until(
      async () => {
        for (const n of nodes) if (((await n.get('/orders')).body.orders ?? []).length) return true;
        return false;
      },
      'the cluster trades',
      40_000,
    );
    await assertFencedOrders(nats.url, nodes);
    const metrics = (await nodes[0].get('/metrics')).body as string;
    assert.match(metrics, /barkeep_cluster_bars_replicated_total \d+/);

    // SIGKILL node-3: its symbols move to the others (lease TTL 2 s).
    const lost = [...split].filter(([, o]) => o === 'node-3').map(([s]) => s);
    await nodes[2].stop('SIGKILL');
    const after = await until(() => owners(nodes.slice(0, 2)), "node-3's symbols taken over", 15_000);
    for (const s of lost) assert.notEqual(after.get(s), 'node-3');

    // SIGSTOP node-2 until its leases move, then SIGCONT: it gets a share back, and no order it
    // might have tried for a symbol it lost reached the stream (or the broker).
    nodes[1].child.kill('SIGSTOP');
    await until(async () => ((await nodes[0].get('/cluster')).body.owned.length === SYMBOLS.length ? true : false), 'node-1 owns everything', 20_000);
    nodes[1].child.kill('SIGCONT');
    await until(() => owners(nodes.slice(0, 2)).then((o) => o && [...o.values()].includes('node-2')), 'node-2 back with a share', 20_000);
    await assertFencedOrders(nats.url, nodes.slice(0, 2));
  } finally {
    for (const n of nodes) await n[Symbol.asyncDispose]().catch(() => undefined);
  }
});
