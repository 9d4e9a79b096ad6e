/**
 * A small, fast version of each campaign of `npm run drill` (drill/), so CI catches a regression:
 * a few hundred fuzzed requests, a few actor crashes judged by the decision oracle, a SIGKILL with
 * restart on the same data, and every vendor fault once. The full counts run in `npm run drill`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crashDrill } from '../../drill/crash.ts';
import { fuzz } from '../../drill/fuzz.ts';
import { sigkillDrill } from '../../drill/sigkill.ts';
import { FAULTS, vendorDrill } from '../../drill/vendor.ts';

// One after another: each starts its own barkeep, and the suite runs beside them.
describe('the drills, small', () => {
  test('the HTTP fuzz over every route and body shape: no 5xx, every 4xx names its field, no wrong token accepted', async () => {
    const f = await fuzz({ requests: 300, unknownSymbols: 100, timeLimitMs: 120_000, seed: 3 });
    assert.ok(f.requests >= 400, `${f.requests} requests`);
    assert.deepEqual(f.examples, []);
    assert.equal(f.server_errors, 0);
    assert.equal(f.unshaped_4xx, 0);
    assert.ok(f.wrong_tokens_tried > 0);
    assert.equal(f.wrong_tokens_accepted, 0);
    for (const s of ['200', '400', '401', '404']) assert.ok(f.by_status[s] > 0, `some ${s}s: ${JSON.stringify(f.by_status)}`);
  });

  test('actor crashes at random moments while trading: the oracle finds no missed or doubled decision and no lost bar', async () => {
    const c = await crashDrill({ crashes: 3, timeLimitMs: 120_000, maxGapMs: 800, seed: 5 });
    assert.equal(c.crashes, 3);
    assert.deepEqual(c.examples, []);
    assert.ok(c.bars_judged > 0, 'some bars were judged');
    assert.equal(c.decisions_missed, 0);
    assert.equal(c.orders_doubled, 0);
    assert.equal(c.orders_unexpected, 0);
    assert.equal(c.wrong_quantity, 0);
    assert.equal(c.fills_doubled, 0);
    assert.equal(c.bars_lost, 0);
  });

  test('SIGKILL of the whole process and a restart on the same data: orders, fills, positions and bars as before', async () => {
    const k = await sigkillDrill({ kills: 1, timeLimitMs: 120_000, maxGapMs: 1000, seed: 9 });
    assert.equal(k.kills, 1);
    assert.deepEqual(k.examples, []);
    assert.equal(k.orders_lost, 0);
    assert.equal(k.fills_lost, 0);
    assert.equal(k.position_disagreements, 0);
    assert.equal(k.bars_changed, 0);
    assert.equal(k.bars_lost, 0);
    assert.equal(k.decisions_missed, 0);
    assert.equal(k.orders_doubled, 0);
  });

  test('every vendor fault once against the Massive stand-in: no rate-limit violation, no bad bar, gaps filled, no key leaked', async () => {
    const v = await vendorDrill({ rounds: 1, timeLimitMs: 120_000 });
    assert.equal(v.faults_injected, FAULTS.length);
    assert.deepEqual(v.examples, []);
    assert.equal(v.rate_limit_violations, 0);
    assert.equal(v.bad_bars_written, 0);
    assert.equal(v.holes_left, 0);
    assert.equal(v.key_leaks, 0);
    for (const fault of ['500', 'html-502', 'reset', 'drip', 'next-url-loop', 'foreign-next-url', 'key-echo']) {
      assert.ok(v.by_fault[fault].errors_counted > 0, `${fault} was seen and counted`);
    }
  });
});
