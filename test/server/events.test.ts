/**
 * GET /events: the actors' events as Server-Sent Events.
 *
 * Against `barkeep serve` on the simulated market (accelerated clock, crash drills on, the hold
 * strategy so orders come on the first bars): bar, order, fill, feed_switch, actor and collector
 * events arrive; a client that drops and reconnects with Last-Event-ID gets exactly what it missed.
 * Against the event hub on a plain HTTP server: a client that stops reading has events dropped and
 * is told how many once it reads again, and an id the hub cannot resume from gets a `reset`.
 */
import assert from 'node:assert/strict';
import { createServer, get as httpGet, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EventHub } from '../../src/server/event-hub.ts';
import { serve, until } from '../helpers/serve.ts';
import { sse, type SseEvent } from '../helpers/sse.ts';

const HOLD = fileURLToPath(new URL('../fixtures/trader-hold-strategy.ts', import.meta.url));
const YAML = `runtime:
  clock: accelerated
  clock_speed: 60
  clock_start: "2026-01-05T15:00:00Z"
collector:
  backfill_days: 1
trader:
  autostart: false
  strategy: module
  strategy_module: ${JSON.stringify(HOLD)}
  strategy_params: { qty: 10 }
`;

const seqOf = (id: string | undefined) => Number(id?.split('-')[1]);

test('the actors report bars, orders, fills, feed switches, collections and restarts; a reconnect with Last-Event-ID misses nothing', async () => {
  await using app = await serve({ yaml: YAML, env: { BARKEEP_FAULTS: '1' } });
  const watcher = await sse(`${app.url}/events`);
  assert.equal(watcher.status, 200);
  try {
    // The loop starts once the watcher listens, so it sees the first orders.
    assert.equal((await app.post('/live/start')).status, 200);
    const has = (type: string, pred: (d: any) => boolean = () => true) => watcher.waitFor((e) => e.event === type && pred(e.data), `a ${type} event`, 30_000);
    const bar = await has('bar');
    assert.ok(['QQQ', 'SPY'].includes(bar.data.symbol));
    for (const k of ['t', 'o', 'h', 'l', 'c', 'v', 'source']) assert.ok(k in bar.data, `bar.${k}`);
    assert.equal(bar.data.actor, 'arbiter');
    const fill = (await has('fill')).data;
    const order = (await has('order', (o) => o.client_order_id === fill.client_order_id && o.state === 'filled')).data;
    assert.equal(order.symbol, fill.symbol);
    assert.equal(fill.qty, 10);
    assert.equal(fill.reason, 'hold 10');
    // What the events said is what the API says.
    const orders = (await app.get('/orders')).body.orders;
    assert.deepEqual(
      orders.find((o: any) => o.client_order_id === order.client_order_id),
      Object.fromEntries(
        Object.entries(order)
          .filter(([k]) => !['type', 'actor', 'at'].includes(k))
          .concat([['type', 'market']]),
      ),
    );
    const sw = (await has('feed_switch')).data;
    assert.ok(['preload', 'cache'].includes(sw.rung), sw.rung);
    assert.ok(sw.reason.length > 0);
    const written = (await has('collector', (c) => c.kind === 'written')).data;
    assert.ok(written.count >= 1);
    const cycle = (await has('collector', (c) => c.kind === 'cycle')).data;
    assert.equal(cycle.api_type, 'Simulated');

    // A client reads a few events, drops, and comes back with the last id it had.
    const first = await sse(`${app.url}/events`);
    await first.waitFor((_e, all) => all.length >= 3, 'three events');
    first.close();
    const lastSeen = first.events[first.events.length - 1].id!;
    // Events go on while it is away.
    await watcher.waitFor((e) => seqOf(e.id) >= seqOf(lastSeen) + 5, 'five events while the client is away', 30_000);
    const again = await sse(`${app.url}/events`, { 'last-event-id': lastSeen });
    const target = watcher.events[watcher.events.length - 1].id!;
    await again.waitFor((e) => e.id === target, `the replay to reach ${target}`);
    again.close();
    const got = [...first.events, ...again.events].map((e) => e.id);
    const want = watcher.events.map((e) => e.id).filter((id) => seqOf(id) >= seqOf(first.events[0].id) && seqOf(id) <= seqOf(target));
    assert.deepEqual(got.slice(0, want.length), want, 'the ids before and after the reconnect are exactly those the watcher saw');
    assert.deepEqual(
      again.events.slice(0, 3).map((e) => e.data),
      watcher.events
        .filter((e) => seqOf(e.id) > seqOf(lastSeen))
        .slice(0, 3)
        .map((e) => e.data),
    );

    // A crashed actor: restarting, then running again with one more restart.
    const crash = await app.post('/actors/collector/crash');
    assert.equal(crash.status, 202);
    const restarting = await has('actor', (a) => a.name === 'collector' && a.state === 'restarting');
    const running = await watcher.waitFor((e) => e.event === 'actor' && e.data.name === 'collector' && e.data.state === 'running' && seqOf(e.id) > seqOf(restarting.id), 'the collector running again');
    assert.equal(running.data.restarts, 1);
    assert.equal(running.data.actor, 'supervisor');
  } finally {
    watcher.close();
  }
});

/** The hub behind a plain HTTP server on 127.0.0.1:0. */
async function hubServer(hub: EventHub): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const types = new URL(req.url ?? '/', 'http://x').searchParams.get('types');
    const detach = hub.attach(res, { lastEventId: req.headers['last-event-id'] as string | undefined, types: types ? new Set(types.split(',')) : null });
    res.on('close', detach);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    server,
    close: () => {
      hub.close();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function parseFrames(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((f) => f.includes('data: '))
    .map((f) => {
      const id = /^id: (.*)$/m.exec(f)?.[1];
      const event = /^event: (.*)$/m.exec(f)?.[1] ?? 'message';
      return { id, event, data: JSON.parse(/^data: (.*)$/m.exec(f)![1]) };
    });
}

test('a client that stops reading has events dropped, not queued, and is told how many when it reads again', async () => {
  const hub = new EventHub({ maxBufferedBytes: 16 * 1024, capacity: 100, boot: 'slow' });
  const s = await hubServer(hub);
  try {
    // A client that reads nothing: its socket fills, then the hub's buffer for it.
    const res = await new Promise<IncomingMessage>((resolve) => httpGet(s.url, resolve));
    res.pause();
    await until(async () => hub.stats().clients === 1, 'the client attached');
    const payload = 'x'.repeat(1000);
    let published = 0;
    while (hub.stats().dropped < 50) {
      hub.publish('trader', { type: 'order', at: 0, data: { n: published + 1, payload } });
      published++;
      assert.ok(published < 200_000, 'events are dropped once the client is backed up');
    }
    const dropped = hub.stats().dropped;
    // It reads again: everything up to the backlog, then the notice, then what is new.
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (text += d));
    res.resume();
    await until(async () => text.includes('event: dropped'), 'the dropped notice', 20_000);
    hub.publish('trader', { type: 'order', at: 0, data: { n: published + 1, payload: '' } });
    await until(async () => text.includes(`"n":${published + 1}`), 'the event after the notice');
    const events = parseFrames(text);
    const notice = events.find((e) => e.event === 'dropped')!;
    assert.equal(notice.data.count, dropped);
    assert.equal(notice.id, undefined, 'the notice carries no id, so Last-Event-ID stays on the last event received');
    const before = events.filter((e, i) => e.event === 'order' && i < events.indexOf(notice));
    const after = events.filter((e, i) => e.event === 'order' && i > events.indexOf(notice));
    // Received ids are 1..k, the notice names k+1..published, then the next one follows.
    assert.deepEqual(
      before.map((e) => e.data.n),
      Array.from({ length: before.length }, (_, i) => i + 1),
    );
    assert.equal(notice.data.from_id, `slow-${before.length + 1}`);
    assert.equal(notice.data.to_id, `slow-${published}`);
    assert.equal(before.length + dropped, published);
    assert.deepEqual(
      after.map((e) => e.data.n),
      [published + 1],
    );
    res.destroy();
  } finally {
    await s.close();
  }
});

test('an id the hub cannot resume from gets a reset: another server process, or older than the ring', async () => {
  const hub = new EventHub({ capacity: 10, boot: 'b1' });
  const s = await hubServer(hub);
  try {
    for (let n = 1; n <= 30; n++) hub.publish('trader', { type: 'fill', at: 0, data: { n } });
    const cases: Array<[string, RegExp]> = [
      ['b0-3', /restarted/],
      ['b1-5', /no longer held/],
      ['b1-99', /future/],
      ['garbage', /not an id/],
    ];
    for (const [id, reason] of cases) {
      const c = await sse(s.url, { 'last-event-id': id });
      const reset = await c.waitFor((e) => e.event === 'reset', `a reset for ${id}`);
      assert.match(reset.data.reason, reason);
      assert.equal(reset.data.newest_id, 'b1-30');
      c.close();
    }
    // Inside the ring: exactly what came after.
    const c = await sse(s.url, { 'last-event-id': 'b1-25' });
    await c.waitFor((_e, all) => all.length >= 5, 'the replay');
    assert.deepEqual(
      c.events.map((e) => e.data.n),
      [26, 27, 28, 29, 30],
    );
    hub.publish('trader', { type: 'fill', at: 0, data: { n: 31 } });
    await c.waitFor((e) => e.data.n === 31, 'the live event after the replay');
    c.close();
  } finally {
    await s.close();
  }
});

test('a 6,000-bar burst does not evict the order before it: a reconnect from before the order still gets it, the lost bars named in a dropped notice', async () => {
  // Default capacity: the newest 5000 bar/collector events, and apart from them the newest 5000 others.
  const hub = new EventHub({ boot: 'burst' });
  const s = await hubServer(hub);
  try {
    hub.publish('supervisor', { type: 'actor', at: 0, data: { name: 'trader', state: 'running' } }); // burst-1
    hub.publish('trader', { type: 'order', at: Date.UTC(2026, 0, 5, 15), data: { client_order_id: 'o-1', state: 'filled' } }); // burst-2
    for (let n = 0; n < 6000; n++) hub.publish('arbiter', { type: 'bar', at: 0, data: { symbol: `S${n}`, n } }); // burst-3..6002
    hub.publish('trader', { type: 'fill', at: 0, data: { client_order_id: 'o-1', qty: 10 } }); // burst-6003
    assert.equal(hub.stats().oldest_id, 'burst-1', 'the oldest event held is the actor event, older than every bar');

    // A client that only wants orders and fills gets exactly them, no notice about bars.
    const narrow = await sse(`${s.url}/?types=order,fill`, { 'last-event-id': 'burst-1' });
    await narrow.waitFor((e) => e.event === 'fill', 'the fill');
    assert.deepEqual(
      narrow.events.map((e) => [e.id, e.event]),
      [
        ['burst-2', 'order'],
        ['burst-6003', 'fill'],
      ],
    );
    assert.equal(narrow.events[0].data.at, '2026-01-05T15:00:00.000Z');
    assert.equal(narrow.events[0].data.actor, 'trader');
    narrow.close();

    // A client of every type: the order, a notice where the 1,000 bars no longer held were, the 5,000 held, the fill.
    const all = await sse(s.url, { 'last-event-id': 'burst-1' });
    await all.waitFor((e) => e.event === 'fill', 'the fill', 20_000);
    const ev = all.events;
    assert.deepEqual([ev[0].id, ev[0].event, ev[0].data.client_order_id], ['burst-2', 'order', 'o-1']);
    assert.equal(ev[1].event, 'dropped');
    assert.equal(ev[1].id, undefined);
    assert.deepEqual([ev[1].data.count, ev[1].data.from_id, ev[1].data.to_id], [1000, 'burst-3', 'burst-1002']);
    const bars = ev.filter((e) => e.event === 'bar');
    assert.equal(bars.length, 5000);
    assert.deepEqual([bars[0].id, bars[0].data.n, bars.at(-1)!.id], ['burst-1003', 1000, 'burst-6002']);
    assert.deepEqual([ev.length, ev.at(-1)!.id], [5003, 'burst-6003']);
    all.close();

    // Resuming from inside the held bars: exactly what came after, no notice.
    const late = await sse(s.url, { 'last-event-id': 'burst-5999' });
    await late.waitFor((e) => e.event === 'fill', 'the fill');
    assert.deepEqual(
      late.events.map((e) => e.id),
      ['burst-6000', 'burst-6001', 'burst-6002', 'burst-6003'],
    );
    late.close();

    // Genuinely too old: once 5,000 more orders/fills/actor events have gone by, the order is gone too: a reset.
    for (let n = 0; n < 5000; n++) hub.publish('trader', { type: 'fill', at: 0, data: { n } });
    const old = await sse(s.url, { 'last-event-id': 'burst-1' });
    assert.match((await old.waitFor((e) => e.event === 'reset', 'a reset')).data.reason, /no longer held/);
    old.close();
  } finally {
    await s.close();
  }
});

test('feed switches stay listed per symbol after the replay ring has moved past them, bounded per symbol and in symbols', () => {
  const hub = new EventHub({ capacity: 10, boot: 'b2', switchHistory: 3, switchSymbols: 2 });
  try {
    const sw = (symbol: string, rung: string | null, at: number) => hub.publish('arbiter', { type: 'feed_switch', at, data: { symbol, rung, reason: `to ${rung}` } });
    sw('QQQ', 'preload', Date.UTC(2026, 0, 5, 15));
    sw('QQQ', 'cache', Date.UTC(2026, 0, 5, 15, 1));
    for (let n = 0; n < 50; n++) hub.publish('arbiter', { type: 'bar', at: 0, data: { symbol: 'QQQ', n } });
    // The ring holds 10 events: both switches are long gone from it, and still listed.
    assert.deepEqual(hub.feedSwitches('QQQ'), {
      QQQ: [
        { id: 'b2-1', at: '2026-01-05T15:00:00.000Z', rung: 'preload', reason: 'to preload' },
        { id: 'b2-2', at: '2026-01-05T15:01:00.000Z', rung: 'cache', reason: 'to cache' },
      ],
    });
    sw('QQQ', null, 3);
    sw('QQQ', 'cache', 4);
    assert.deepEqual(
      hub.feedSwitches('QQQ').QQQ.map((s) => s.rung),
      ['cache', null, 'cache'],
      'the newest 3 per symbol',
    );
    sw('SPY', 'preload', 5);
    sw('IWM', 'preload', 6);
    assert.deepEqual(Object.keys(hub.feedSwitches()), ['IWM', 'SPY'], 'the symbol switched least recently is forgotten first');
    assert.deepEqual(hub.feedSwitches('DIA'), { DIA: [] });
  } finally {
    hub.close();
  }
});
