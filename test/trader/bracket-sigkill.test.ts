/**
 * A bracket survives a SIGKILL between one exit's fill and its sibling's cancel: a real trader
 * process (test/fixtures/bracket-trader.ts: TradingLoop, OrderManager and PaperBroker over LMDB)
 * kills itself with SIGKILL at that moment, is restarted on the same data directory and fed the
 * same bars again and a fall through the stop, and exits the position once: the take-profit's
 * fill stands, the stop-loss ends cancelled and never fills, the position is flat.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exitOrderId } from '../../src/actors/trader/order-types.ts';
import { clientOrderId } from '../../src/actors/trader/client-order-id.ts';
import { openStorage } from '../../src/storage/storage.ts';
import { BARS, T0 } from '../fixtures/bracket-trader.ts';
import { tempDir } from './support.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/bracket-trader.ts', import.meta.url));
const ENTRY = clientOrderId('bracket', 'QQQ', T0, 0);
const TP = exitOrderId(ENTRY, 'take_profit');
const SL = exitOrderId(ENTRY, 'stop_loss');

/** Runs the trader over bars from..to; resolves with how it ended. */
function trader(dir: string, from: number, to: number, killAt: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = fork(FIXTURE, [dir, String(from), String(to), killAt], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

/** The journal's and the paper broker's view of the bracket, read after the process is gone. */
async function look(dir: string) {
  const s = openStorage({ path: dir });
  try {
    const state = (id: string) => s.orders.get(id)?.state;
    const broker = s.checkpoints.get<{
      fills: Array<{ clientOrderId: string; side: string; qty: number; price: number }>;
      positions: Record<string, { qty: number }>;
      open: Array<{ clientOrderId: string }>;
    }>('paper-broker');
    return {
      journal: { entry: state(ENTRY), tp: state(TP), sl: state(SL) },
      brokerFills: (broker?.fills ?? []).map((f) => [f.clientOrderId, f.side, f.qty, f.price]),
      brokerOpen: (broker?.open ?? []).map((o) => o.clientOrderId),
      brokerPosition: broker?.positions.QQQ?.qty ?? 0,
      journalFills: s.orders.all().flatMap((r) => r.fills.map((f) => [r.clientOrderId, r.side, f.qty, f.price])),
    };
  } finally {
    await s.close();
  }
}

for (const killAt of ['broker-write', 'journal-fill'] as const) {
  test(`a trader SIGKILLed at ${killAt}, between a bracket's take-profit fill and its stop-loss's cancel, exits once after a restart`, async (t) => {
    const dir = tempDir(t);
    // Bars 0-3: the entry fills at bar 1's open (100); bar 3 trades up to 103 through the take-profit (102).
    const first = await trader(dir, 0, 3, killAt);
    assert.equal(first.signal, 'SIGKILL', `the trader died by SIGKILL: ${first.stderr}`);
    assert.equal(existsSync(`${dir}/killed`) && readFileSync(`${dir}/killed`, 'utf8'), killAt);

    // The kill landed between the two: the broker has the exit done, the journal not all of it.
    const dead = await look(dir);
    assert.deepEqual(dead.brokerFills, [
      [ENTRY, 'buy', 10, 100],
      [TP, 'sell', 10, 102],
    ]);
    assert.deepEqual(dead.brokerOpen, [], 'the paper broker cancelled the stop-loss in the same write');
    assert.equal(dead.journal.sl, 'submitted', 'the journal still has the stop-loss working');
    assert.equal(dead.journal.tp, killAt === 'broker-write' ? 'submitted' : 'filled');

    // Restart on the same data: the same bars again, then a fall through the stop (98) to 95.
    const second = await trader(dir, 0, BARS.length - 1, 'none');
    assert.equal(second.code, 0, second.stderr);
    const after = await look(dir);
    assert.deepEqual(after.journal, { entry: 'filled', tp: 'filled', sl: 'cancelled' });
    assert.deepEqual(after.journalFills, [
      [ENTRY, 'buy', 10, 100],
      [TP, 'sell', 10, 102],
    ]);
    assert.deepEqual(after.brokerFills, dead.brokerFills, 'no second exit at the broker');
    assert.equal(after.brokerPosition, 0);
  });
}
