/**
 * Time in force on the ibkr broker against the TWS simulator: IB cancels DAY orders at the
 * session close (13:00 New York on an early-close day), and the cancel reaches the journal
 * through the broker's events; a GTC order rests on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bar, closer, journaled, life, simulator, tempDir } from './support.ts';

test('IB cancels a DAY order at the 13:00 close of an early-close day, and the journal ends it cancelled; a GTC order rests on', async (t) => {
  // Friday 2025-11-28, the day after Thanksgiving: 12:59:00 New York, a minute before the close.
  const start = Date.UTC(2025, 10, 28, 17, 59);
  const close = Date.UTC(2025, 10, 28, 18, 0);
  const onClose = closer(t);
  const sim = await simulator(onClose, { startTime: start, earlyCloses: ['2025-11-28'] });
  const l = await life(t, sim, tempDir(t), onClose);
  const p = Math.round(sim.currentPrice('AAPL') * 100) / 100;
  await l.orders.onBar(bar('AAPL', start - 60_000, p));
  const bid = (tif: 'day' | 'gtc', index: number) =>
    l.orders.decide(
      { kind: 'order', symbol: 'AAPL', side: 'buy', qty: 5, type: 'limit', limitPrice: Math.round(p * 50) / 100, tif, reason: `a ${tif} bid` },
      { strategy: 't', barStart: start - 60_000, index },
    );
  const day = await bid('day', 0);
  const gtc = await bid('gtc', 1);
  assert.equal(day.action, 'submitted');
  assert.equal(gtc.action, 'submitted');
  assert.equal(sim.placedOrders.find((o) => o.orderRef === (day as { clientOrderId: string }).clientOrderId)?.tif, 'DAY');

  // Not before the close: a second before it, simulated time having run the minute, the DAY order still works.
  await sim.advanceUntil(() => sim.clock.now() >= close - 1_000, 'a second before the close');
  assert.equal(l.storage.orders.get((day as { clientOrderId: string }).clientOrderId)?.state, 'submitted', 'still working before the close');
  const ended = await journaled(l, (day as { clientOrderId: string }).clientOrderId, 'cancelled');
  // On the manual clock the cancel is journaled at the simulated time IB sent it: the simulator's first 5 s tick from the close.
  assert.ok(ended.updatedAt >= close && ended.updatedAt <= close + 5_000, `ended at the close: ${new Date(ended.updatedAt).toISOString()}`);
  assert.match(ended.rejectReason ?? '', /cancel/);
  assert.equal(l.storage.orders.get((gtc as { clientOrderId: string }).clientOrderId)?.state, 'submitted', 'the GTC order works on');
});
