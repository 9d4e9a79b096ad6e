import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Supervisor } from '../../src/runtime/supervisor.ts';
import { MetricsRegistry, actorRegistry } from '../../src/server/metrics.ts';

const FIXTURE = new URL('../fixtures/counter-actor.ts', import.meta.url);

test('actor samples are collected as prom-client counters and gauges, one family per name', async () => {
  const text = await actorRegistry([
    { name: 'barkeep_feed_switches_total', help: 'Feed ladder switches', type: 'counter', labels: { symbol: 'QQQ', from: 'cache', to: 'preload' }, value: 2 },
    { name: 'barkeep_feed_switches_total', help: 'Feed ladder switches', type: 'counter', labels: { symbol: 'SPY', from: 'cache', to: 'preload' }, value: 1 },
    { name: 'barkeep_feed_rung', help: 'Rung serving', type: 'gauge', labels: { symbol: 'QQQ' }, value: -1 },
    { name: 'barkeep_source_rate_limit_remaining', help: 'left', type: 'gauge', labels: {}, value: Infinity },
    { name: 'not a metric name', help: 'x', type: 'gauge', labels: {}, value: 1 },
  ]).metrics();
  assert.match(text, /# TYPE barkeep_feed_switches_total counter\n/);
  assert.match(text, /barkeep_feed_switches_total\{symbol="QQQ",from="cache",to="preload"\} 2\n/);
  assert.match(text, /barkeep_feed_switches_total\{symbol="SPY",from="cache",to="preload"\} 1\n/);
  assert.match(text, /# TYPE barkeep_feed_rung gauge\nbarkeep_feed_rung\{symbol="QQQ"\} -1\n/);
  assert.match(text, /barkeep_source_rate_limit_remaining 0\n/, 'a value that is not finite is reported as 0');
  assert.doesNotMatch(text, /not a metric name/);
});

test("the runtime's _total figures are counters, and the actors' own samples follow them", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-metrics-'));
  const sup = new Supervisor({
    actors: [{ name: 'alpha', module: FIXTURE, config: { dataDir: dir } }],
    clock: { kind: 'real' },
    log: pino({ level: 'silent' }),
    logLevel: 'silent',
    policy: { warmSpares: false },
  });
  try {
    await sup.start();
    await sup.call('alpha', 'add', { n: 4 });
    const text = await new MetricsRegistry(sup).text();
    for (const name of ['restarts', 'messages_in', 'messages_out', 'failed_messages']) {
      assert.match(text, new RegExp(`# TYPE barkeep_actor_${name}_total counter\\n`), name);
    }
    assert.match(text, /barkeep_actor_restarts_total\{actor="alpha"\} 0\n/);
    assert.match(text, /barkeep_actor_messages_in_total\{actor="alpha"\} [1-9]/);
    assert.match(text, /# TYPE barkeep_actor_up gauge\nbarkeep_actor_up\{actor="alpha",state="running"\} 1\n/);
    assert.match(text, /# TYPE counter_total gauge\ncounter_total\{actor="alpha"\} 4\n/);
  } finally {
    await sup.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
