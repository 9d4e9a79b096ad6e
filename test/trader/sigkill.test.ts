/**
 * Crash safety of the order journal against SIGKILL: a trader process (test/fixtures/killable-trader.ts:
 * the real OrderManager over the real journal file) sends a burst of orders to a broker that lives
 * here, in the test's process, and is killed with SIGKILL at random moments of the burst, again and
 * again, each time restarted over the same journal. In the end every order the broker received is
 * in the journal, the broker never received an order twice, and the burst was completed.
 *
 * The fixture is bundled with esbuild first, so each restart is a plain `node` start.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BrokerOrder } from '../../src/actors/trader/broker.ts';
import { FileOrderJournal, JOURNAL_FILE } from '../../src/storage/order-log.ts';
import type { FromBroker, ToBroker } from '../fixtures/killable-trader.ts';

const KILLS = 50;
const BURST = 400;
/**
 * Kill points: after 0 to 5 orders reached the broker in this incarnation (so the burst outlasts 50
 * kills however fast the disk is), either at once on the order's arrival (the broker has it, the
 * trader never hears back) or up to 2 ms later (anywhere in the next journal write and send).
 */
const MAX_SUBMITS_BEFORE_KILL = 5;
const MAX_KILL_DELAY_MS = 2;

/** A seeded generator, so a failing run can be repeated (the seed is in the failure message). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('a trader killed with SIGKILL 50 times during a burst of orders never loses a sent order and never sends one twice', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'barkeep-sigkill-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bundle = path.join(dir, 'trader.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('../fixtures/killable-trader.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    minify: true,
    logLevel: 'error',
    // Bundled CommonJS dependencies (zod's, luxon's) may call require.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  const journalPath = path.join(dir, JOURNAL_FILE);
  const seed = Number(process.env.SIGKILL_SEED ?? Date.now() % 1_000_000);
  const random = rng(seed);
  const why = `(seed ${seed}; rerun with SIGKILL_SEED=${seed})`;

  // The broker: every order it was sent, in arrival order, and how often each id came.
  const received = new Map<string, number>();
  const working: BrokerOrder[] = [];
  let brokerSeq = 0;

  /** One incarnation; killed as `kill` says, or run to the end when undefined. */
  const incarnation = (kill: { afterSubmits: number; delayMs: number } | undefined) =>
    new Promise<{ killed: boolean; started: boolean; done: boolean }>((resolve, reject) => {
      const child: ChildProcess = fork(bundle, [journalPath, String(BURST)], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      child.on('error', () => {}); // a send to a process just killed; 'close' still comes
      let started = false;
      let done = false;
      let submits = 0;
      let killed = false;
      child.on('message', (m: ToBroker) => {
        const killNow = () => {
          if (!kill) return;
          if (kill.delayMs === 0) killed = child.kill('SIGKILL');
          else setTimeout(() => (killed = child.kill('SIGKILL')), kill.delayMs);
        };
        if (m.type === 'started') {
          started = true;
          if (kill && kill.afterSubmits === 0) killNow();
          return;
        }
        if (m.type === 'done') {
          done = true;
          return;
        }
        let value: unknown;
        if (m.op === 'submit' && kill && ++submits === kill.afterSubmits) killNow();
        if (m.op === 'submit') {
          const id = m.order.clientOrderId;
          received.set(id, (received.get(id) ?? 0) + 1);
          const brokerOrderId = `b-${++brokerSeq}`;
          const { symbol, side, qty, type, limitPrice } = m.order;
          working.push({ clientOrderId: id, brokerOrderId, symbol, side, qty, type, limitPrice, filledQty: 0, state: 'submitted' });
          value = { brokerOrderId };
        } else if (m.op === 'openOrders') value = working;
        else if (m.op === 'executions') value = [];
        else value = {};
        // A reply to a process killed meanwhile goes nowhere (EPIPE): that is the point of the test.
        if (child.connected) child.send({ type: 'reply', seq: m.seq, value } satisfies FromBroker, () => {});
      });
      // 'close' comes after the IPC channel has delivered everything the process sent before it died.
      child.on('close', (code, signal) => {
        if (!killed && !done) reject(new Error(`trader exited (code ${code}, signal ${signal}) before it was killed or done: ${stderr}`));
        else resolve({ killed: killed && signal === 'SIGKILL', started, done });
      });
    });

  const deadline = Date.now() + 90_000;
  let kills = 0;
  let killedMidBurst = 0;
  while (kills < KILLS) {
    assert.ok(Date.now() < deadline, `50 kills did not fit in the time bound; ${kills} so far ${why}`);
    const r = await incarnation({ afterSubmits: Math.floor(random() * (MAX_SUBMITS_BEFORE_KILL + 1)), delayMs: random() < 0.3 ? 0 : random() * MAX_KILL_DELAY_MS });
    if (r.killed) {
      kills++;
      if (!r.done) killedMidBurst++;
    }
    if (r.done) break; // The burst finished before this kill point: nothing more to interrupt.
  }
  const last = await incarnation(undefined);
  assert.equal(last.done, true);

  const journal = new FileOrderJournal({ path: journalPath });
  const records = new Map(journal.all().map((r) => [r.clientOrderId, r]));
  const twice = [...received].filter(([, n]) => n > 1).map(([id]) => id);
  assert.deepEqual(twice, [], `orders the broker received more than once ${why}`);
  const missing = [...received.keys()].filter((id) => !records.has(id));
  assert.deepEqual(missing, [], `orders the broker received that the journal lacks ${why}`);
  assert.equal(received.size, BURST, `the burst was completed across the restarts ${why}`);
  assert.equal(records.size, BURST);
  for (const r of records.values()) assert.equal(r.state, 'submitted', `${r.clientOrderId} ends submitted ${why}`);
  assert.ok(kills >= KILLS, `at least ${KILLS} kills during the burst, got ${kills} ${why}`);
  assert.ok(killedMidBurst >= KILLS, `kills that landed mid-burst: ${killedMidBurst} ${why}`);
});
