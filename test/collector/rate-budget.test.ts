import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rateBudget } from '../../src/actors/collector/rate-budget.ts';

const MIN = 60_000;

test('50 symbols polled every minute on a 5-per-minute plan need 50 and stretch the cadence to 10 minutes', () => {
  const b = rateBudget({ symbols: 50, symbolsPerRequest: 1, rateLimitPerMin: 5, intervalMs: MIN });
  assert.deepEqual(b, { needed: 50, available: 5, requests_per_cycle: 50, interval_ms: 10 * MIN, stretched: true });
});

test('a budget that fits keeps the asked cadence', () => {
  const b = rateBudget({ symbols: 5, symbolsPerRequest: 1, rateLimitPerMin: 5, intervalMs: MIN });
  assert.equal(b.stretched, false);
  assert.equal(b.interval_ms, MIN);
  assert.equal(b.needed, 5);
});

test('reconciling every 5 minutes needs a fifth of the requests per minute', () => {
  const b = rateBudget({ symbols: 20, symbolsPerRequest: 1, rateLimitPerMin: 5, intervalMs: 5 * MIN });
  assert.equal(b.needed, 4);
  assert.equal(b.stretched, false);
});

test('a multi-symbol endpoint serves many symbols per request', () => {
  const b = rateBudget({ symbols: 450, symbolsPerRequest: 200, rateLimitPerMin: 200, intervalMs: MIN });
  assert.equal(b.requests_per_cycle, 3);
  assert.equal(b.needed, 3);
});

test('a stretched cadence is a whole number of minutes', () => {
  const b = rateBudget({ symbols: 11, symbolsPerRequest: 1, rateLimitPerMin: 5, intervalMs: 30_000 });
  assert.equal(b.needed, 22);
  assert.equal(b.interval_ms, 3 * MIN);
});
