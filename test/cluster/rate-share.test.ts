/**
 * A vendor key's rate limit holds for the cluster as a whole: three nodes' Massive sources on one
 * key, each with its own NATS connection and the cluster budget, against the fake Massive server
 * that stamps every request with the key it carried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { startNats } from '../helpers/nats.ts';
import { startFakeMassive, type FakeRequest } from '../fakes/massive/server.ts';
import { MassiveSource } from '../../src/sources/massive/source.ts';
import { ClusterRateGate, openRatesBucket } from '../../src/cluster/rate-share.ts';
import { RealClock } from '../../src/market/clock.ts';

const WINDOW_MS = 1000;
const LIMIT = 4;
// A request starts a little after its slot is stamped (the KV write, the HTTP send): the guard covers
// that delay, on a loaded test machine too.
const GUARD_MS = 400;
const T0 = Date.UTC(2026, 2, 2, 14, 30);

/** The most requests carrying `key` that arrived in one rolling window. */
function maxInWindow(log: FakeRequest[], key: string): number {
  const at = log
    .filter((r) => r.auth === `Bearer ${key}`)
    .map((r) => r.at)
    .sort((a, b) => a - b);
  let max = 0;
  for (let i = 0, j = 0; i < at.length; i++) {
    while (at[i] - at[j] >= WINDOW_MS) j++;
    max = Math.max(max, i - j + 1);
  }
  return max;
}

test('three nodes on one vendor key never exceed its limit together, and a key used alone keeps its whole budget', async () => {
  await using nats = await startNats();
  const fake = await startFakeMassive({ validKeys: ['shared-key', 'own-key'], generate: true });
  const clock = new RealClock();
  const conns = await Promise.all([0, 1, 2, 3].map(() => connect({ servers: nats.url })));
  try {
    const source = async (i: number, apiKey: string) => {
      const kv = await openRatesBucket(jetstream(conns[i]));
      const gate = new ClusterRateGate(kv, { vendor: 'massive', apiKey, limit: LIMIT, windowMs: WINDOW_MS, guardMs: GUARD_MS, clock });
      return { gate, source: new MassiveSource({ apiKey, restUrl: fake.url, rateLimitPerMin: LIMIT, rateWindowMs: WINDOW_MS, rateGuardMs: GUARD_MS, clock, sharedRate: gate }) };
    };
    const nodes = await Promise.all([0, 1, 2].map((i) => source(i, 'shared-key')));
    const alone = await source(3, 'own-key');
    // Each node alone would be allowed LIMIT per window: together they would send 3 × LIMIT at once.
    const fetches = nodes.flatMap(({ source: s }, n) => [0, 1, 2, 3].map((k) => s.fetchBars(`S${n}${k}`, '1Min', T0, T0 + 5 * 60_000)));
    const own = [0, 1, 2, 3].map((k) => alone.source.fetchBars(`A${k}`, '1Min', T0, T0 + 5 * 60_000));
    await Promise.all(own);
    const results = await Promise.all(fetches);
    assert.ok(results.every((bars) => bars.length === 5));
    assert.equal(fake.log.filter((r) => r.auth === 'Bearer shared-key').length, 12);
    assert.ok(maxInWindow(fake.log, 'shared-key') <= LIMIT, `at most ${LIMIT} requests in any window, saw ${maxInWindow(fake.log, 'shared-key')}`);
    assert.ok(fake.log.every((r) => r.status !== 429));
    // The budget is per key: the other key's four requests went out in one window.
    assert.equal(maxInWindow(fake.log, 'own-key'), 4);
    // Only a hash of the key is stored.
    const kv = await openRatesBucket(jetstream(conns[0]));
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    assert.ok(keys.length === 2 && keys.every((k) => /^massive_[0-9a-f]{16}$/.test(k)), keys.join(','));
    for (const { source: s } of [...nodes, alone]) await s.close?.();
  } finally {
    for (const c of conns) await c.close();
    await fake.close();
  }
});
