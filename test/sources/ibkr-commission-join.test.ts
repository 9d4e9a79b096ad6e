import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/market/clock.ts';
import { CommissionJoin } from '../../src/sources/ibkr/commission-join.ts';
import type { IbkrExecution } from '../../src/sources/ibkr/order-client.ts';

const T0 = Date.UTC(2026, 0, 5, 15, 0);

function exec(execId: string): IbkrExecution {
  return { execId, orderId: 7, orderRef: 'coid-1', symbol: 'QQQ', side: 'buy', qty: 10, price: 500.25, time: '20260105-15:00:01' };
}

function rig(waitMs = 5_000) {
  const clock = new ManualClock(T0);
  const warnings: Array<{ obj: object; msg: string }> = [];
  const join = new CommissionJoin(clock, { warn: (obj, msg) => warnings.push({ obj, msg }) }, waitMs, 100);
  return { clock, warnings, join };
}

test('a fill waits for its commission report and carries it, with the execution time read from TWS', async () => {
  const { clock, join } = rig();
  const fill = join.fill(exec('e1'), undefined);
  clock.advance(1_000);
  join.report('e1', 1.25);
  assert.deepEqual(await fill, { execId: 'e1', orderId: 7, orderRef: 'coid-1', symbol: 'QQQ', side: 'buy', qty: 10, price: 500.25, time: T0 + 1_000, commission: 1.25 });
  assert.equal(join.fillsWithoutCommission, 0);
  assert.equal(join.lateCommissions, 0);
});

test('a commission report after the wait leaves the fill at commission 0, and is counted and logged as late', async () => {
  const { clock, warnings, join } = rig(5_000);
  const fill = join.fill(exec('e2'), undefined);
  clock.advance(4_999);
  join.report('other', 9); // someone else's report does not end the wait
  clock.advance(1);
  const f = await fill;
  assert.equal(f.commission, 0);
  assert.equal(join.fillsWithoutCommission, 1);
  assert.match(warnings.at(-1)!.msg, /no commission report within 5000 ms/);

  join.report('e2', 1.25);
  assert.equal(join.lateCommissions, 1);
  assert.deepEqual(warnings.at(-1)!.obj, { execId: 'e2', commission: 1.25 });
  assert.match(warnings.at(-1)!.msg, /came after its fill was recorded with commission 0/);
  // Seen again (an executions() listing in reconcile), the fill now carries the late commission.
  assert.equal((await join.fill(exec('e2'), join.known('e2'))).commission, 1.25);
  join.report('e2', 1.25);
  assert.equal(join.lateCommissions, 1, 'a repeated report is not late twice');
});

test('closing ends the waits without counting fills as uncommissioned', async () => {
  const { join } = rig();
  const fill = join.fill(exec('e3'), undefined);
  join.close();
  assert.equal((await fill).commission, 0);
  assert.equal(join.fillsWithoutCommission, 0);
});
