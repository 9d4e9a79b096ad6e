import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/market/clock.ts';
import { HistoricalPacer, type PacedRequest } from '../../src/sources/ibkr/historical-pacer.ts';
import { IbkrError } from '../../src/sources/ibkr/errors.ts';

const T0 = Date.UTC(2025, 0, 15, 14, 30);

interface Granted extends PacedRequest {
  at: number;
}

/** Checks IB's three pacing rules over a log of grants; returns the first broken one. */
function violation(log: Granted[]): string | undefined {
  const sorted = [...log].sort((a, b) => a.at - b.at);
  for (let i = 0; i < sorted.length; i++) {
    const g = sorted[i];
    for (let j = 0; j < i; j++) {
      const p = sorted[j];
      if (p.identity === g.identity && g.at - p.at < 15_000) return `identical requests ${p.at - T0} and ${g.at - T0}`;
    }
    const sameContract = sorted.slice(0, i + 1).filter((p) => p.contract === g.contract && g.at - p.at < 2_000);
    if (sameContract.reduce((s, p) => s + (p.cost ?? 1), 0) >= 6) return `6 for ${g.contract} within 2 s at ${g.at - T0}`;
    const inTen = sorted.slice(0, i + 1).filter((p) => g.at - p.at < 600_000);
    if (inTen.reduce((s, p) => s + (p.cost ?? 1), 0) > 60) return `more than 60 in 10 minutes at ${g.at - T0}`;
  }
  return undefined;
}

/** Lets promise callbacks run between clock steps. */
const settle = () => new Promise((r) => setImmediate(r));

async function runUntilDone(clock: ManualClock, pending: () => number, stepMs: number, maxSteps: number): Promise<void> {
  for (let i = 0; i < maxSteps && pending() > 0; i++) {
    await settle();
    clock.advance(stepMs);
  }
  await settle();
}

test('a burst for one contract goes out five per two seconds, none refused', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock, { marginMs: 0 });
  const log: Granted[] = [];
  let pending = 0;
  for (let i = 0; i < 12; i++) {
    const req = { contract: 'AAPL|SMART|TRADES', identity: `AAPL|end${i}` };
    pending++;
    void pacer.acquire(req).then((at) => {
      log.push({ ...req, at });
      pending--;
    });
  }
  await runUntilDone(clock, () => pending, 100, 1000);
  assert.equal(log.length, 12);
  assert.equal(violation(log), undefined);
  assert.deepEqual(
    log.map((g) => g.at - T0),
    [0, 0, 0, 0, 0, 2000, 2000, 2000, 2000, 2000, 4000, 4000],
  );
});

test('an identical request waits 15 seconds after the first', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock, { marginMs: 0 });
  const req = { contract: 'MSFT|SMART|TRADES', identity: 'MSFT|same' };
  const first = await pacer.acquire(req);
  let second: number | undefined;
  void pacer.acquire(req).then((at) => (second = at));
  let other: number | undefined;
  void pacer.acquire({ contract: 'MSFT|SMART|TRADES', identity: 'MSFT|other' }).then((at) => (other = at));
  await settle();
  assert.equal(other, T0, 'a different request for the same contract is not held up');
  clock.advance(14_999);
  await settle();
  assert.equal(second, undefined);
  clock.advance(1);
  await settle();
  assert.equal(first, T0);
  assert.equal(second, T0 + 15_000);
});

test('no more than 60 requests go out in any ten minutes', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock, { marginMs: 0 });
  const log: Granted[] = [];
  let pending = 0;
  for (let i = 0; i < 130; i++) {
    const req = { contract: `S${i % 40}|SMART|TRADES`, identity: `req${i}` };
    pending++;
    void pacer.acquire(req).then((at) => {
      log.push({ ...req, at });
      pending--;
    });
  }
  await runUntilDone(clock, () => pending, 1000, 2000);
  assert.equal(log.length, 130);
  assert.equal(violation(log), undefined);
  assert.equal(log.filter((g) => g.at - T0 < 600_000).length, 60);
  assert.equal(log.filter((g) => g.at - T0 < 1_200_000).length, 120);
});

test('random traffic never breaks any of the three rules, and every request is granted', async () => {
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock);
  const log: Granted[] = [];
  let pending = 0;
  let sent = 0;
  for (let step = 0; step < 3000; step++) {
    if (rand() < 0.08) {
      const n = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < n; k++) {
        const sym = ['AAPL', 'MSFT', 'QQQ'][Math.floor(rand() * 3)];
        const req: PacedRequest = {
          contract: `${sym}|SMART|TRADES`,
          identity: `${sym}|${Math.floor(rand() * 6)}`,
          cost: rand() < 0.1 ? 2 : 1,
        };
        pending++;
        sent++;
        void pacer.acquire(req).then((at) => {
          log.push({ ...req, at });
          pending--;
        });
      }
    }
    await settle();
    clock.advance(250);
  }
  await runUntilDone(clock, () => pending, 1000, 100_000);
  assert.equal(log.length, sent);
  assert.equal(violation(log), undefined);
});

test('the margin widens every window, for the time a granted request takes to reach IB', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock, { marginMs: 1000 });
  const log: Granted[] = [];
  let pending = 0;
  for (let i = 0; i < 7; i++) {
    const req = { contract: 'AAPL|SMART|TRADES', identity: i < 6 ? `AAPL|${i}` : 'AAPL|0' };
    pending++;
    void pacer.acquire(req).then((at) => {
      log.push({ ...req, at });
      pending--;
    });
  }
  await runUntilDone(clock, () => pending, 100, 1000);
  assert.deepEqual(
    log.map((g) => g.at - T0),
    [0, 0, 0, 0, 0, 3000, 16_000],
  );
});

test('after a pacing violation nothing goes out until the penalty has passed', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock);
  pacer.penalize(60_000);
  let at: number | undefined;
  void pacer.acquire({ contract: 'A|SMART|TRADES', identity: 'a' }).then((t) => (at = t));
  clock.advance(59_999);
  await settle();
  assert.equal(at, undefined);
  clock.advance(1);
  await settle();
  assert.equal(at, T0 + 60_000);
});

test('an aborted wait is rejected and frees its place', async () => {
  const clock = new ManualClock(T0);
  const pacer = new HistoricalPacer(clock, { perContractLimit: 2 });
  const req = (i: number) => ({ contract: 'A|SMART|TRADES', identity: `a${i}` });
  await pacer.acquire(req(1));
  await pacer.acquire(req(2));
  const ac = new AbortController();
  const waiting = pacer.acquire(req(3), ac.signal);
  ac.abort();
  await assert.rejects(waiting, (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_ABORTED');
  assert.equal(pacer.stats().queued, 0);
  pacer.close();
  await assert.rejects(pacer.acquire(req(4)), (e: unknown) => e instanceof IbkrError && e.code === 'IBKR_CLOSED');
});
