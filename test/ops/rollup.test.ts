/**
 * Trading a larger bar size than the collector collects (issue 16): the collector keeps collecting
 * 1Min bars and the 5Min bars the loop trades are built from them (src/actors/collector/rollup.ts),
 * written to the cache and handed on by the arbiter like collected bars. `barkeep serve` runs as a
 * child process on the simulated market with an accelerated clock; the strategy is a module
 * outside the repository that writes every bar it receives to a file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serve, until } from '../helpers/serve.ts';

const RECORDER = `
import { appendFileSync } from 'node:fs';
export default function recorder(params: Record<string, unknown>) {
  const file = String(params.file);
  return {
    name: 'recorder',
    warmUp(): void {},
    onBar(symbol: string, bar: any) {
      appendFileSync(file, JSON.stringify({ symbol, bar_size: bar.barSize, start: bar.start, o: bar.open, h: bar.high, l: bar.low, c: bar.close, v: bar.volume }) + '\\n');
      return undefined;
    },
  };
}
`;

const BASE = `runtime:\n  clock: accelerated\n  clock_speed: 300\n  clock_start: "2026-01-05T15:00:00Z"\ntrader:\n  autostart: false\n`;
const YAML = `${BASE}collector:\n  backfill_days: 1\n`;

test('trading 5Min while collecting 1Min: the strategy receives 5Min bars built from the cached 1Min bars; a size that cannot be built is a 409', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep rollup.strategy-'));
  const module = join(dir, 'recorder.ts');
  const file = join(dir, 'bars.jsonl');
  writeFileSync(module, RECORDER);
  try {
    await using app = await serve({ yaml: YAML, timeoutMs: 60_000 });
    await until(async () => (await app.get('/bars/QQQ?bar_size=1Min&limit=1')).body.bars?.length > 0, 'collected 1Min bars');

    const started = await app.post('/live/start', { symbols: ['QQQ'], bar_size: '5Min', strategy: 'rec', strategy_module: module, strategy_params: { file } });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.equal(started.body.bar_size, '5Min');
    const collector = (await app.get('/data-collector/status')).body;
    assert.equal(collector.bar_size, '1Min', 'the collector keeps collecting 1Min');

    const received = await until(
      async () => {
        let lines: any[] = [];
        try {
          lines = readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l));
        } catch {
          return false;
        }
        return lines.length >= 3 && lines;
      },
      'three 5Min bars handed to the strategy',
      45_000,
    );
    const FIVE = 300_000;
    for (let i = 0; i < received.length; i++) {
      const r = received[i];
      assert.equal(r.symbol, 'QQQ');
      assert.equal(r.bar_size, '5Min');
      assert.equal(r.start % FIVE, 0, `${new Date(r.start).toISOString()} starts on a 5-minute boundary`);
      if (i > 0) assert.equal(r.start - received[i - 1].start, FIVE, 'one bar per 5 minutes, in order, no hole');
      const q = `/bars/QQQ?bar_size=1Min&from=${r.start}&to=${r.start + FIVE - 1}&limit=10`;
      const ones = (await app.get(q)).body.bars;
      assert.equal(ones.length, 5, `five 1Min bars under ${new Date(r.start).toISOString()}`);
      assert.deepEqual(
        { o: r.o, h: r.h, l: r.l, c: r.c, v: r.v },
        {
          o: ones[0].o,
          h: Math.max(...ones.map((b: any) => b.h)),
          l: Math.min(...ones.map((b: any) => b.l)),
          c: ones[4].c,
          v: ones.reduce((s: number, b: any) => s + b.v, 0),
        },
        `OHLCV of the 5Min bar at ${new Date(r.start).toISOString()}`,
      );
    }
    // The collector can be changed under the 5Min loop as long as 5Min can still be built.
    const more = await app.post('/data-collector/start', { symbols: ['QQQ', 'IWM'] });
    assert.equal(more.status, 200, JSON.stringify(more.body));
    assert.equal(more.body.bar_size, '1Min');
    const coarse = await app.post('/data-collector/start', { symbols: ['QQQ'], bar_size: '15Min' });
    assert.equal(coarse.status, 409);
    assert.match(coarse.body.message, /trades 5Min bars, which cannot be built from 15Min/);
    // The built bars are in the cache like collected ones, served by /bars.
    const cached = (await app.get(`/bars/QQQ?bar_size=5Min&from=${received[0].start}&limit=1`)).body.bars[0];
    assert.equal(cached.t, new Date(received[0].start).toISOString());
    assert.equal(cached.c, received[0].c);

    // Collecting 15Min: a 5Min loop cannot be built from it (409 naming both); 1Hour can.
    assert.equal((await app.post('/live/stop')).status, 200);
    assert.equal((await app.post('/data-collector/start', { symbols: ['QQQ'], bar_size: '15Min' })).status, 200);
    const r = await app.post('/live/start', { bar_size: '5Min' });
    assert.equal(r.status, 409);
    assert.equal(r.body.field, 'bar_size');
    assert.match(r.body.message, /collects 15Min bars and the loop would trade 5Min/);
    const ok = await app.post('/live/start', { bar_size: '1Hour' });
    assert.equal(ok.status, 200, '1Hour is four 15Min bars');
    assert.equal((await app.get('/data-collector/status')).body.bar_size, '15Min');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
