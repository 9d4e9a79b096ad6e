/**
 * Regression from the hostile campaign (issue 12): "slow peers hold barkeep". A vendor that stalls
 * held the collector's cycle with no error counted and `next_cycle_at` null. A cycle now has a total
 * deadline: it is aborted, counted as overrun, shown in status and metrics, and the next one runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/market/clock.ts';
import type { Bar } from '../../src/market/bar.ts';
import { SourceError, type HistoricalBarSource } from '../../src/sources/types.ts';
import { MIN, TempStore, makeCollector, until } from '../collector/support.ts';

/** A vendor that accepts the request and never answers (until the request is aborted). */
class StallingSource implements HistoricalBarSource {
  readonly name = 'massive' as const;
  readonly apiType = 'Massive API' as const;
  calls = 0;
  waiting = 0;
  fetchBars(_symbol: string, _size: unknown, _from: number, _to: number, signal?: AbortSignal): Promise<Bar[]> {
    this.calls++;
    this.waiting++;
    return new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => {
        this.waiting--;
        reject(signal.reason instanceof SourceError ? signal.reason : new SourceError('massive', 'ABORTED', 'aborted'));
      });
    });
  }
  stats() {
    return { requests: this.calls, errors: 0, retries: 0, rateLimited: 0, malformed: 0, rateLimitRemaining: 5, rateLimitPerMin: 5 };
  }
}

test('slow peers hold barkeep: a stalled collection cycle ends at its deadline, is counted as overrun and shown', async () => {
  const store = new TempStore();
  const clock = new ManualClock(Date.UTC(2026, 2, 4, 15, 0));
  const source = new StallingSource();
  const { collector } = makeCollector(store.storage, clock, [source], { cycleDeadlineMs: 2 * MIN });
  try {
    await collector.start(['SPY'], '1Min');
    clock.advance(0);
    await until(() => source.waiting === 1, 'the request at the vendor');
    const during = collector.status();
    assert.ok(during.cycle_started_at, 'status shows a cycle under way');
    clock.advance(2 * MIN + 1);
    await until(() => collector.status().cycles_overrun === 1, 'the overrun counted');
    const after = collector.status();
    assert.equal(after.cycle_started_at, null);
    assert.match(after.errors[0].message, /overran its 120000 ms deadline/);
    assert.equal(after.errors[0].code, 'TIMEOUT');
    assert.ok(after.next_cycle_at, 'the schedule goes on');
    const overrun = collector.metrics().find((m) => m.name === 'barkeep_collector_cycles_overrun_total');
    assert.equal(overrun?.value, 1);
  } finally {
    await collector.stop();
    await store.dispose();
  }
});
