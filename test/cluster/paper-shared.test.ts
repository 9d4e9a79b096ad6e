/**
 * The cluster's paper broker against a real nats-server: two nodes' brokers are one account, the
 * state is in JetStream before an event is announced, and a write that loses the race to the
 * other node is done again on the fresh state rather than overwriting it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { startNats } from '../helpers/nats.ts';
import { SharedPaperBroker } from '../../src/cluster/paper-shared.ts';
import { PAPER_BUCKET } from '../../src/cluster/subjects.ts';
import { ManualClock } from '../../src/market/clock.ts';
import type { Bar } from '../../src/market/bar.ts';
import type { OrderRecord } from '../../src/storage/types.ts';
import { order as pendingOrder } from '../trader/support.ts';

const T0 = Date.UTC(2026, 2, 2, 14, 30);

/** A pending 10-share market buy of `symbol` at T0. */
function order(id: string, symbol: string): OrderRecord {
  return pendingOrder(id, { symbol, qty: 10, barStart: T0, createdAt: T0, updatedAt: T0 });
}

function bar(symbol: string, start: number, price: number): Bar {
  return { symbol, barSize: '1Min', start, open: price, high: price, low: price, close: price, volume: 100, vwap: price, trades: 1, source: 'sim', receivedAt: start };
}

test("two nodes' paper brokers are one account: orders, fills and cash of one are the other's, and no write is lost to a race", async () => {
  await using nats = await startNats();
  const ncA = await connect({ servers: nats.url });
  const ncB = await connect({ servers: nats.url });
  try {
    const clock = new ManualClock(T0);
    const opts = { clock, startingCash: 10_000, slippageBps: 0, commissionPerShare: 0, minCommission: 0 };
    const a = await SharedPaperBroker.open(jetstream(ncA), opts);
    const b = await SharedPaperBroker.open(jetstream(ncB), opts);
    const kv = await new Kvm(jetstream(ncA)).open(PAPER_BUCKET);

    // Every event is announced after the account in JetStream holds it.
    const seenDurable: boolean[] = [];
    a.onEvent((e) => {
      void kv.get('paper-broker').then((entry) => {
        const state = entry!.json<{ known: [string][]; fills: { execId: string }[] }>();
        seenDurable.push(e.type === 'fill' ? state.fills.some((f) => f.execId === e.fill.execId) : state.known.some(([id]) => id === e.clientOrderId));
      });
    });

    // Both nodes submit at once: each write races the other's, and both orders end up working.
    await Promise.all([a.submit(order('a1', 'AAPL')), b.submit(order('b1', 'MSFT')), a.submit(order('a2', 'AAPL')), b.submit(order('b2', 'MSFT'))]);
    assert.deepEqual((await a.openOrders()).map((o) => o.clientOrderId).sort(), ['a1', 'a2', 'b1', 'b2']);
    assert.deepEqual((await b.openOrders()).map((o) => o.clientOrderId).sort(), ['a1', 'a2', 'b1', 'b2']);
    assert.ok(a.conflicts + b.conflicts > 0, 'the writes raced');

    // A resubmit of a known id on the other node is the same order, not a second one.
    const again = await b.submit(order('a1', 'AAPL'));
    assert.equal(again.brokerOrderId, (await a.openOrders()).find((o) => o.clientOrderId === 'a1')!.brokerOrderId);

    // Node A fills AAPL; node B sees the fills, the position and the cash.
    await a.onBar(bar('AAPL', T0 + 60_000, 100));
    const fills = await b.executions();
    assert.deepEqual(fills.map((f) => f.clientOrderId).sort(), ['a1', 'a2']);
    assert.deepEqual(await b.positions(), { AAPL: { qty: 20, avgPrice: 100 } });
    assert.equal(b.cash(), 8_000);
    assert.deepEqual((await b.openOrders()).map((o) => o.clientOrderId).sort(), ['b1', 'b2']);

    // B cancels its own; A sees it.
    await b.cancel('b1');
    assert.deepEqual(
      (await a.openOrders()).map((o) => o.clientOrderId),
      ['b2'],
    );

    await new Promise((r) => setTimeout(r, 50));
    assert.ok(seenDurable.length >= 4 && seenDurable.every(Boolean), `every event durable before announced: ${seenDurable}`);
  } finally {
    await ncA.close();
    await ncB.close();
  }
});
