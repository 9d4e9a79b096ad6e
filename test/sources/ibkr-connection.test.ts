/** IbkrConnection: backoff, handshake timeout, heartbeat, client id in use, close. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ManualClock } from '../../src/market/clock.ts';
import { IbkrConnection, type IbkrConnectionState } from '../../src/sources/ibkr/connection.ts';
import { startTwsSimulator } from '../fakes/tws/index.ts';
import { record, waitFor } from '../helpers/wait.ts';

const START = Date.UTC(2025, 0, 15, 14, 30, 0);
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('reconnect attempts back off exponentially up to the cap while TWS is not there', async () => {
  const port = await freePort();
  const clock = new ManualClock(START);
  const conn = new IbkrConnection({ host: '127.0.0.1', port, clientId: 1, clock, backoff: { initialMs: 1000, factor: 2, maxMs: 4000 }, heartbeatMs: 0 });
  cleanups.push(() => conn.close());
  const states = record<[IbkrConnectionState, string]>(conn, 'state');
  const attempts = () => states.seen.filter(([s]) => s === 'connecting').length;
  conn.start();
  const gaps: number[] = [];
  for (let attempt = 1; attempt <= 5; attempt++) {
    await waitFor(() => conn.state === 'disconnected', `refusal ${attempt}`);
    assert.equal(attempts(), attempt);
    // Step the clock until the next attempt starts; the step count is the backoff.
    let waited = 0;
    while (attempts() === attempt) {
      clock.advance(100);
      waited += 100;
      assert.ok(waited <= 10_000, 'an attempt always follows');
    }
    gaps.push(waited);
  }
  assert.deepEqual(gaps, [1000, 2000, 4000, 4000, 4000]);
  assert.ok(conn.stats().disconnects >= 5);
});

test('a server that accepts but never answers the handshake is dropped after the timeout and tried again', async () => {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  const clock = new ManualClock(START);
  const conn = new IbkrConnection({ host: '127.0.0.1', port: (srv.address() as net.AddressInfo).port, clientId: 1, clock, connectTimeoutMs: 5000, heartbeatMs: 0 });
  cleanups.push(() => conn.close());
  conn.start();
  await waitFor(() => sockets.length === 1, 'socket accepted');
  assert.equal(conn.state, 'connecting');
  clock.advance(4999);
  assert.equal(conn.state, 'connecting');
  clock.advance(1);
  assert.equal(conn.state, 'disconnected');
  clock.advance(1000);
  await waitFor(() => sockets.length === 2, 'second attempt');
});

test('a connection whose socket goes quiet is caught by the heartbeat and reconnected', async () => {
  const sim = await startTwsSimulator({ clock: new ManualClock(START) });
  cleanups.push(() => sim.close());
  const conn = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 4, clock: sim.clock, heartbeatMs: 10_000, heartbeatTimeoutMs: 5_000, maxRequestsPerSecond: 1e6 });
  cleanups.push(() => conn.close());
  const ready = record<[{ reconnect: boolean }]>(conn, 'ready');
  conn.start();
  await sim.advanceUntil(() => ready.seen.length === 1, 'ready');
  await sim.advanceUntil(() => sim.countRequests('REQ_CURRENT_TIME') >= 1 && conn.state === 'connected', 'a heartbeat answered');
  assert.equal(sim.clock.now(), START + 10_000, 'the first heartbeat goes out heartbeatMs after the handshake');
  sim.freezeClients();
  const frozenAt = sim.clock.now();
  await sim.advanceUntil(() => ready.seen.length === 2, 'reconnected');
  assert.ok(sim.clock.now() - frozenAt >= 10_000 + 5_000, 'dropped only once a heartbeat went unanswered for heartbeatTimeoutMs');
  assert.equal(ready.seen[1][0].reconnect, true);
  assert.equal(sim.connections, 2);
});

test('client id in use: 326, then the connection keeps trying and gets in once the id is free', async () => {
  const sim = await startTwsSimulator({ clock: new ManualClock(START) });
  cleanups.push(() => sim.close());
  const first = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 7, clock: sim.clock, heartbeatMs: 0 });
  first.start();
  await first.whenReady(60_000);
  const second = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 7, clock: sim.clock, heartbeatMs: 0 });
  cleanups.push(() => second.close());
  const notices = record<[{ code: number; policy: { kind: string } }]>(second, 'notice');
  second.start();
  await waitFor(() => notices.seen.find(([n]) => n.code === 326), '326');
  assert.equal(notices.seen.find(([n]) => n.code === 326)?.[0].policy.kind, 'client-id-in-use');
  assert.notEqual(second.state, 'connected');
  await first.close();
  await sim.advanceUntil(() => second.state === 'connected', 'the second gets in');
  await second.whenReady(600_000);
  assert.equal(second.state, 'connected');
});

test('close stops reconnecting and leaves nothing running', async () => {
  const sim = await startTwsSimulator({ clock: new ManualClock(START) });
  cleanups.push(() => sim.close());
  const conn = new IbkrConnection({ host: sim.host, port: sim.port, clientId: 8, clock: sim.clock });
  conn.start();
  await conn.whenReady(60_000);
  await conn.close();
  assert.equal(conn.state, 'closed');
  await waitFor(() => sim.activeConnections() === 0, 'socket gone');
  await assert.rejects(conn.whenReady(1000), /closed/);
  const before = sim.connections;
  // Ten minutes of clock time: any reconnect timer (backoff at most 60 s) would have fired.
  await sim.advance(600_000);
  assert.equal(sim.connections, before);
});
