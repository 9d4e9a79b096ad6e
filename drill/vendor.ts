/**
 * The fault-injecting Massive stand-in (test/fakes/massive, speaking the vendor's real format)
 * against barkeep's collector with the real Massive adapter and a real LMDB cache: round after
 * round, every vendor failure of the hostile campaign is injected once, a collection cycle runs into
 * it, and a clean cycle follows. Checked after each fault: no rate-limit violation (the stand-in
 * counts requests over its window), no bad bar in the cache (duplicates and invalid bars are served
 * for one symbol), no hole left (the cache holds every bar the vendor has), and no part of the key
 * anywhere in status (one fault echoes the key the stand-in was given).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Collector } from '../src/actors/collector/collector.ts';
import { DEFAULT_SCHEDULE } from '../src/actors/collector/schedule.ts';
import { MarketCalendar } from '../src/market/calendar.ts';
import { RealClock } from '../src/market/clock.ts';
import { MassiveSource } from '../src/sources/massive/source.ts';
import { validateBar } from '../src/storage/bar-validation.ts';
import { openStorage } from '../src/storage/storage.ts';
import { generatedBars } from '../test/fakes/massive/generated-bars.ts';
import { startFakeMassive, toMassiveWire } from '../test/fakes/massive/server.ts';

const KEY = 'MSVdrill-key-0123456789abcdefghijklmnop';
const MIN = 60_000;
/** The stand-in's and the adapter's rate window: 20 requests per 2 s (a minute's pacing, 30x faster). */
const RATE = 20;
const WINDOW_MS = 2_000;
const GOOD = ['QQQ', 'SPY'];
const BAD = 'IWM';

export const FAULTS = [
  '500',
  'html-502',
  'dropped',
  'reset',
  'malformed-json',
  'truncated-json',
  '429',
  'stall',
  'drip',
  'next-url-loop',
  'foreign-next-url',
  'empty-page',
  'key-echo',
  'duplicate-and-invalid-bars',
] as const;

export interface VendorOptions {
  rounds: number;
  timeLimitMs: number;
}

export interface VendorFigures {
  rounds: number;
  faults_injected: number;
  by_fault: Record<string, { injected: number; errors_counted: number; holes_after: number }>;
  requests: number;
  rate_limit_violations: number;
  max_requests_in_window: number;
  rate_limit: string;
  bad_bars_written: number;
  holes_left: number;
  key_leaks: number;
  cycles_overrun: number;
  duration_s: number;
  examples: string[];
}

export async function vendorDrill(opts: VendorOptions): Promise<VendorFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-drill-vendor-'));
  const t0 = Date.now();
  const clock = new RealClock();
  const fake = await startFakeMassive({ validKeys: [KEY], generate: true, rateLimit: { limit: RATE, windowMs: WINDOW_MS } });
  const storage = openStorage({ path: dir });
  const source = new MassiveSource({ apiKey: KEY, restUrl: fake.url, rateLimitPerMin: RATE, rateWindowMs: WINDOW_MS, timeoutMs: 300, clock, maxRetries: 1, backoffMs: 20 });
  const collector = new Collector({
    sources: [source],
    store: storage.bars,
    checkpoints: storage.checkpoints,
    calendar: new MarketCalendar(),
    clock,
    log: pino({ level: 'silent' }),
    schedule: { ...DEFAULT_SCHEDULE, marketHoursIntervalMs: 3_600_000, offHoursIntervalMs: 3_600_000 },
    backfillDays: 1,
    failoverAfterFailures: 3,
    retryPreferredAfterMs: 3_600_000,
    alwaysOpen: true,
    cycleDeadlineMs: 10_000,
    onWritten: () => {},
  });
  // The symbol with bad bars: every good bar once, plus duplicates and bars the cache must refuse.
  const now = clock.now();
  const span = { from: now - 2 * 86_400_000, to: now };
  const good = generatedBars(BAD, '1Min', span.from, span.to, 'massive').map(toMassiveWire);
  const bad = good.slice(0, 50).flatMap((w, i) => [{ ...w }, { ...w, h: w.l - 1 }, { ...w, t: w.t + 1 }, { ...w, v: -5 }, { ...w, o: Number.NaN }, i % 2 ? { ...w, c: 'x' } : null]);
  fake.setWireBars(BAD, '1Min', [...good, ...bad]);
  const fig: VendorFigures = {
    rounds: 0,
    faults_injected: 0,
    by_fault: Object.fromEntries(FAULTS.map((f) => [f, { injected: 0, errors_counted: 0, holes_after: 0 }])),
    requests: 0,
    rate_limit_violations: 0,
    max_requests_in_window: 0,
    rate_limit: `${RATE} per ${WINDOW_MS} ms`,
    bad_bars_written: 0,
    holes_left: 0,
    key_leaks: 0,
    cycles_overrun: 0,
    duration_s: 0,
    examples: [],
  };
  let injected429 = 0;
  const errorsSoFar = () => Object.values(collector.status().sources).reduce((n, s) => n + (s?.errors ?? 0), 0);
  try {
    await collector.start([...GOOD, BAD], '1Min');
    await collector.collectNow();
    for (let round = 0; round < opts.rounds && Date.now() - t0 < opts.timeLimitMs; round++) {
      fig.rounds++;
      for (const fault of FAULTS) {
        if (Date.now() - t0 > opts.timeLimitMs) break;
        const e0 = errorsSoFar();
        inject(fault);
        fig.faults_injected++;
        fig.by_fault[fault].injected++;
        await collector.collectNow();
        if (fault === 'foreign-next-url') {
          fake.setNextUrlOrigin(undefined);
          fake.setPageSize(50_000);
        }
        fig.by_fault[fault].errors_counted += errorsSoFar() - e0;
        // A clean cycle: whatever the fault left out is filled now.
        await collector.collectNow();
        const holes = countHoles();
        fig.by_fault[fault].holes_after += holes;

        fig.holes_left += holes;
        const leak = leaks(JSON.stringify(collector.status()));
        if (leak) {
          fig.key_leaks++;
          if (fig.examples.length < 10) fig.examples.push(`after ${fault}: status holds part of the key`);
        }
      }
    }
    fig.bad_bars_written = countBadBars();
    fig.requests = fake.requests;
    fig.max_requests_in_window = fake.maxInWindow;
    fig.rate_limit_violations = Math.max(0, fake.log.filter((r) => r.status === 429).length - injected429);
    fig.cycles_overrun = collector.status().cycles_overrun;
    fig.duration_s = (Date.now() - t0) / 1000;
    return fig;
  } finally {
    await collector.stop().catch(() => undefined);
    await source.close();
    await storage.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }

  function inject(fault: (typeof FAULTS)[number]): void {
    switch (fault) {
      case '500':
        return fake.failNext(1, 500);
      case 'html-502':
        return fake.rawNext(2, 502, 'text/html', '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>');
      case 'dropped':
        return fake.dropNext(2);
      case 'reset':
        return fake.resetNext(2);
      case 'malformed-json':
        return fake.rawNext(2, 200, 'application/json', '{"status":"OK","results":[{"t":1,,}]');
      case 'truncated-json':
        return fake.malformedNext(2);
      case '429':
        injected429++;
        return fake.failNext(1, 429);
      case 'stall':
        return fake.slowNext(1, 1_000);
      case 'drip':
        return fake.dripNext(1, 100);
      case 'next-url-loop':
        return fake.loopNext(1);
      case 'foreign-next-url':
        fake.setPageSize(5);
        return fake.setNextUrlOrigin('http://127.0.0.2:9');
      case 'empty-page':
        return fake.emptyPageNext(1);
      case 'key-echo':
        return fake.echoKeyNext(2, 295);
      case 'duplicate-and-invalid-bars':
        return; // always served for the bad-bars symbol; counted at the end
    }
  }

  /** Bars the vendor has that the cache lacks, over what the collector says it covered. */
  function countHoles(): number {
    let holes = 0;
    for (const s of GOOD) {
      const cached = storage.bars.range(s, '1Min', 0, Number.MAX_SAFE_INTEGER);
      if (cached.length === 0) {
        holes++;
        continue;
      }
      const have = new Set(cached.map((b) => b.start));
      const last = cached[cached.length - 1].start;
      for (const b of generatedBars(s, '1Min', cached[0].start, last, 'massive')) {
        if (!have.has(b.start)) {
          holes++;
          if (fig.examples.length < 10) fig.examples.push(`${s} ${new Date(b.start).toISOString()} missing`);
        }
      }
    }
    return holes;
  }

  function countBadBars(): number {
    let badBars = 0;
    const want = new Map(good.map((w) => [w.t, w]));
    for (const b of storage.bars.range(BAD, '1Min', 0, Number.MAX_SAFE_INTEGER)) {
      const w = want.get(b.start);
      let valid = true;
      try {
        validateBar(b);
      } catch {
        valid = false;
      }
      if (!valid || !w || w.o !== b.open || w.h !== b.high || w.l !== b.low || w.c !== b.close || w.v !== b.volume) {
        badBars++;
        if (fig.examples.length < 10) fig.examples.push(`bad bar cached: ${JSON.stringify(b)}`);
      }
    }
    return badBars;
  }
}

function leaks(text: string): boolean {
  for (let i = 0; i + 8 <= KEY.length; i++) if (text.includes(KEY.slice(i, i + 8))) return true;
  return false;
}
