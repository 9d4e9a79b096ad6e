/**
 * Cluster mode through the public surface: nats-server with JetStream and three `barkeep serve`
 * processes on the simulated market, each with its own port and data directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNats } from '../helpers/nats.ts';
import { runCli, serve, until, type Served } from '../helpers/serve.ts';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { OrderFence } from '../../src/cluster/order-fence.ts';
import { PAPER_BUCKET } from '../../src/cluster/subjects.ts';

const SYMBOLS = ['AAPL', 'MSFT', 'QQQ', 'SPY', 'IWM', 'NVDA'];
const list = `[${SYMBOLS.join(', ')}]`;

/**
 * A user's strategy file outside the repository: on the first bar of each symbol it buys one share
 * at market (a fill) and places a limit buy far below the market that keeps working (gtc).
 */
const PROBE = `export default function probe() {
  const seen = new Set();
  return {
    name: 'probe',
    warmUp() {},
    onBar(symbol, bar) {
      if (seen.has(symbol)) return undefined;
      seen.add(symbol);
      return [
        { kind: 'order', symbol, side: 'buy', qty: 1, type: 'market', reason: 'probe: a fill' },
        { kind: 'order', symbol, side: 'buy', qty: 1, type: 'limit', limitPrice: Math.round(bar.close * 50) / 100, tif: 'gtc', reason: 'probe: a working order' },
      ];
    },
  };
}
`;

function yaml(natsUrl: string, nodeId: string, strategyModule?: string): string {
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
    ...(strategyModule ? ['  strategy: module', `  strategy_module: ${JSON.stringify(strategyModule)}`] : []),
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

/** Every client order id in the live nodes' journals, and the ones past pending (sent or settled). */
async function journaled(nodes: Served[]): Promise<{ made: Set<string>; beyondPending: Map<string, unknown>; refused: string[] }> {
  const made = new Set<string>();
  const beyondPending = new Map<string, unknown>();
  const refused: string[] = [];
  for (const n of nodes) {
    for (const o of (await n.get('/orders')).body.orders ?? []) {
      if (o.state === 'rejected') refused.push(`${o.client_order_id}: ${o.reject_reason ?? o.reason}`);
      else {
        made.add(o.client_order_id);
        // (A pending one may be on its way: journaled first, appended next.)
        if (o.state !== 'pending') beyondPending.set(o.client_order_id, o);
      }
    }
  }
  return { made, beyondPending, refused };
}

/**
 * Every order was appended by the node holding the symbol's lease at that point of the stream, once.
 * The cluster keeps trading while this looks, so each check reads in the order the engine writes:
 * the journals before the stream (an order past pending was appended before the journals were read),
 * the broker before the journals again (an order is journaled before it is appended and sent).
 */
async function assertFencedOrders(natsUrl: string, nodes: Served[]): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  try {
    const before = await journaled(nodes);
    const jsm = await jetstreamManager(nc);
    const fence = new OrderFence(jetstream(nc), jsm, 'observer');
    const ids = new Set<string>();
    for (const s of SYMBOLS) {
      let holder: string | null = null;
      for (const { event } of await fence.history(s)) {
        if (event.type === 'lease') holder = event.node_id;
        else if (event.type === 'cancel') assert.equal(event.node_id, holder, `the cancel of ${event.client_order_id} appended by the lease holder`);
        else {
          assert.equal(event.node_id, holder, `${event.client_order_id} for ${s} appended by the lease holder`);
          // Two owners may append one id (the new owner decides a bar its predecessor decided, and
          // deterministic ids make it the same order); the broker takes it once (checked below).
          ids.add(event.client_order_id!);
        }
      }
    }
    // Orders the fence refused are journaled as rejected and never reached the broker. An order a
    // node adopted from a symbol's previous owner is in both journals: counted once.
    for (const [id, o] of before.beyondPending) assert.ok(ids.has(id), `${id} was appended to the stream before it was sent: ${JSON.stringify(o)}`);
    assert.ok(before.made.size > 0, `orders were sent; refused: ${before.refused.join('; ')}`);
    // One broker for the cluster: every client order id it ever accepted, once.
    const kv = await new Kvm(jetstream(nc)).open(PAPER_BUCKET);
    const account = (await kv.get('paper-broker'))!.json<{ accepted: number; known: [string, string, number][] }>();
    const accepted = account.known.map(([id]) => id);
    assert.equal(new Set(accepted).size, accepted.length, 'no client order id twice at the broker');
    assert.equal(account.accepted, accepted.length);
    const after = await journaled(nodes);
    for (const id of accepted) assert.ok(after.made.has(id), `${id} at the broker is journaled by a live node`);
  } finally {
    await nc.close();
  }
}

test('a cluster node refuses to start when NATS is unreachable, saying so in one line', async () => {
  const r = await runCli(['serve'], { yaml: yaml('nats://127.0.0.1:1', 'n1'), env: { BARKEEP_PORT: '0' }, timeoutMs: 30_000 });
  assert.equal(r.code, 1);
  assert.match(r.stderr + r.stdout, /cluster: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
});

test("three nodes split the symbols, every cache holds every symbol, and a SIGKILLed node's symbols and orders move", async () => {
  await using nats = await startNats();
  const home = mkdtempSync(join(tmpdir(), 'barkeep strategies.d-'));
  const probe = join(home, 'probe.mjs');
  writeFileSync(probe, PROBE);
  const nodes: Served[] = [];
  try {
    for (const id of ['node-1', 'node-2', 'node-3']) nodes.push(await serve({ yaml: yaml(nats.url, id, probe), timeoutMs: 90_000 }));
    // Three owners, not two: node-3 may join after the first two have split the symbols between them.
    const split = await until(
      async () => {
        const o = await owners(nodes);
        return o && new Set(o.values()).size === nodes.length ? o : false;
      },
      'the symbols split over three nodes with no overlap',
      30_000,
    );
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

    // node-3 has, for each of its symbols, a filled order and a working one.
    const lost = [...split].filter(([, o]) => o === 'node-3').map(([s]) => s);
    const ofNode3 = await until(
      async () => {
        const orders = ((await nodes[2].get('/orders')).body.orders ?? []) as Array<{ client_order_id: string; symbol: string; state: string; type: string }>;
        const filled = orders.filter((o) => o.state === 'filled');
        const working = orders.filter((o) => o.state === 'submitted' && o.type === 'limit');
        return lost.every((s) => filled.some((o) => o.symbol === s) && working.some((o) => o.symbol === s)) ? { filled, working } : false;
      },
      'node-3 has a fill and a working order per symbol',
      30_000,
    );

    // SIGKILL node-3: its symbols move to the others (lease TTL 3 s), and with them its orders: the
    // new owner rebuilds them from BARKEEP_ORDERS and the shared broker before it trades the symbol.
    await nodes[2].stop('SIGKILL');
    const after = await until(() => owners(nodes.slice(0, 2)), "node-3's symbols taken over", 15_000);
    for (const s of lost) assert.notEqual(after.get(s), 'node-3');
    const byUrl = new Map([
      ['node-1', nodes[0]],
      ['node-2', nodes[1]],
    ]);
    await until(
      async () => {
        for (const s of lost) {
          const heir = byUrl.get(after.get(s)!)!;
          const theirs = new Map(((await heir.get(`/orders?symbol=${s}`)).body.orders ?? []).map((o: { client_order_id: string }) => [o.client_order_id, o]));
          for (const o of ofNode3.working.filter((w) => w.symbol === s)) if ((theirs.get(o.client_order_id) as { state?: string })?.state !== 'submitted') return false;
          // The fill node-3 got is in the new owner's view of the one broker, and in its position.
          for (const o of ofNode3.filled.filter((w) => w.symbol === s)) if ((theirs.get(o.client_order_id) as { state?: string })?.state !== 'filled') return false;
          const pos = ((await heir.get('/positions')).body.positions ?? []).find((p: { symbol: string }) => p.symbol === s);
          if (!pos || pos.qty < 1) return false;
        }
        return true;
      },
      "node-3's working orders adopted and its fills seen by the new owners",
      20_000,
    );

    // SIGSTOP node-2 until its leases move, then SIGCONT: it gets a share back, and no order it
    // might have tried for a symbol it lost reached the stream (or the broker).
    nodes[1].child.kill('SIGSTOP');
    await until(async () => (await nodes[0].get('/cluster')).body.owned.length === SYMBOLS.length, 'node-1 owns everything', 20_000);
    nodes[1].child.kill('SIGCONT');
    await until(() => owners(nodes.slice(0, 2)).then((o) => o && [...o.values()].includes('node-2')), 'node-2 back with a share', 20_000);
    await assertFencedOrders(nats.url, nodes.slice(0, 2));
  } finally {
    for (const n of nodes) await n[Symbol.asyncDispose]().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
  }
});
