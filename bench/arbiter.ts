/**
 * Arbiter benchmark.
 *
 * 1. Bar resolution, in one thread, two ways, with 1 and with 5,000 subscribed symbols:
 *    a. Per call: the arbiter's hot path — a key arrives (`onBarsWritten` with one start and the
 *       source the cache holds for it, as the collector's notice says), the ladder counts a fresh
 *       cache bar, and the key is handed to `send` — timed per call with process.hrtime.bigint,
 *       keys spread round-robin. Beside it in the same blocks, the memory floor: a Map lookup and
 *       three per-symbol objects. Heap growth per call is measured on a separate untimed run
 *       (hrtime allocates BigInts; the run's keys are built before it), with the GCs seen during it.
 *       Goal: p99 under 10 µs.
 *    b. Per notice (fixtures/arbiter-notice-rig.ts): what the arbiter receives at a minute's close,
 *       one collector notice of 5,000 keys (5,000 symbols' minute, or one symbol's 5,000 minutes),
 *       handled as actor.ts handles it, timed once per notice and divided per bar; the memory floor
 *       walks the same notice in the same block. Goal: 5,000 symbols within 1.5x of one at p99.
 *    Why the goal is held against (b): at one symbol the per-call work is ~30 ns and the timer
 *    around it ~50-90 ns, so per-call p99 measures the timer and the interrupts that land in it,
 *    not resolution; a notice is timed once for 5,000 bars, so the timer is spread over them, and
 *    it is the unit of work the arbiter's thread actually gets. Both are printed; (a) keeps its
 *    ratio beside its floor's.
 * 2. End to end between real worker threads: a writer actor awaits `put` of a bar into LMDB, then
 *    sends its key over the runtime's peer link; a reader actor resolves it with readInto and notes
 *    the time. Beside it, raw postMessage of the same key between the same two threads, in the same
 *    run, rounds alternating. Goal: p99 under 500 µs.
 * 3. Full path: the real collector (simulated market) and the real arbiter actor, with a probe in
 *    the trader's place: from the main thread's collectNow call to the probe holding the new bar's
 *    key (an upper bound: it includes the control call, the fetch and the write), cycles until
 *    10,000 bars arrived. Only bars the cache holds are waited for and counted (the probe looks);
 *    a symbol-minute with no bar (no simulated trade in it, after the close) is printed apart.
 *
 * Run alone: node --import tsx bench/arbiter.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { Arbiter } from '../src/actors/arbiter/arbiter.ts';
import { BAR_SOURCE_CODE, type Bar } from '../src/market/bar.ts';
import { ManualClock } from '../src/market/clock.ts';
import { loadConfig } from '../src/config/load.ts';
import { SharedClockController } from '../src/runtime/clock.ts';
import { Supervisor } from '../src/runtime/supervisor.ts';
import { actorConfigs } from '../src/config/actor-configs.ts';
import { openStorage } from '../src/storage/storage.ts';
import type { CollectorRequests } from '../src/actors/collector/protocol.ts';
import type { ProbeRequests } from './fixtures/arbiter-trader-probe.ts';
import type { ReaderRequests } from './fixtures/arbiter-reader-actor.ts';
import { wallMs, type WriterRequests } from './fixtures/arbiter-writer-actor.ts';
import { noticeRig } from './fixtures/arbiter-notice-rig.ts';
import { fmt, rssMiB, summarize, table, type Summary } from './stats.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 5, 15, 0);
const PRELOAD = 5;
const silent = pino({ level: 'silent' });

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function symbolName(i: number): string {
  let s = '';
  for (let k = 0; k < 4; k++) {
    s = String.fromCharCode(65 + (i % 26)) + s;
    i = Math.floor(i / 26);
  }
  return `S${s}`;
}

function bar(symbol: string, start: number): Bar {
  return { symbol, barSize: '1Min', start, open: 100, high: 101, low: 99, close: 100.5, volume: 1_000, vwap: 100.2, trades: 10, source: 'sim', receivedAt: start + MIN };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Bytes in V8's young generation, where short-lived objects go (code the JIT makes lives elsewhere). */
function newSpaceUsed(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_used_size ?? NaN;
}

interface ResolutionFigures {
  symbols: number;
  calls: number;
  us: Summary;
  /** Median cost of the timing itself (two hrtime.bigint calls), already in `us`. */
  timer_overhead_us: number;
  heap_bytes_per_call: number;
  gcs_during_heap_run: number;
  /** One call per event-loop turn, with the checkpoint write it queues (sync part). */
  per_turn_with_checkpoint_us: Summary;
  prefill_s: number;
}

interface ResolutionRig {
  /** Writes the next `n` bars, then times announcing their `n` keys, into the rig's samples. */
  timed(n: number): Promise<void>;
  /** The untimed allocation and per-turn runs, then closes the rig. */
  finish(): Promise<ResolutionFigures>;
}

/**
 * Sets up an arbiter over `nSymbols` subscribed symbols with enough bars written for `calls`
 * timed calls (plus warm-up and the untimed runs), and warms it.
 */
async function resolutionRig(nSymbols: number, calls: number): Promise<ResolutionRig> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-arbiter-'));
  const storage = openStorage({ path: dir });
  const symbols = Array.from({ length: nSymbols }, (_, i) => symbolName(i));
  const warmCalls = Math.max(20_000, nSymbols * 2);
  const heapCalls = Math.max(50_000, nSymbols * 4);
  const turnCalls = Math.min(5_000, calls);
  // The warm-up history first; the bars to be handed on are written after the subscription, as a
  // collector would (their keys are announced one by one below).
  const t0 = performance.now();
  const batch: Bar[] = [];
  const flush = async () => {
    await storage.bars.putMany(batch);
    batch.length = 0;
  };
  for (const s of symbols) {
    for (let j = 0; j < PRELOAD; j++) batch.push(bar(s, T0 + j * MIN));
    if (batch.length >= 20_000) await flush();
  }
  await flush();
  const clock = new ManualClock(T0 + PRELOAD * MIN);
  let delivered = 0;
  // A typed array, not a `let`: a double stored in a closure variable is boxed (an allocation).
  const lastStart = new Float64Array(1);
  const arbiter = new Arbiter({
    store: storage.bars,
    checkpoints: storage.checkpoints,
    clock,
    log: silent,
    // Every announced bar counts as fresh (the live case), so the cache rung keeps serving.
    cacheMaxAgeMs: 1e12,
    preloadBars: PRELOAD,
    climbBackAfterBars: 3,
    historicalPollMs: MIN,
    ibkr: null,
    send: (m) => {
      if (m.type === 'bar') {
        delivered++;
        lastStart[0] = m.start;
      }
    },
  });
  arbiter.subscribe(symbols, '1Min', {}, true);
  // The bars to be handed on are written in the order their keys are announced, each block just
  // before its keys, as a collector writes a minute's bars and then announces them: the arbiter
  // reads pages the writer has just touched, as it does live.
  const nextWrite = new Int32Array(nSymbols).fill(PRELOAD);
  let written = 0;
  const writeAhead = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const si = written++ % nSymbols;
      batch.push(bar(symbols[si], T0 + nextWrite[si]++ * MIN));
      if (batch.length >= 20_000) await flush();
    }
    await flush();
    storage.bars.refresh();
  };
  await writeAhead(warmCalls);
  const prefillS = (performance.now() - t0) / 1000;

  // Call k announces the next bar of symbol k mod n, with the source the cache holds for it, as
  // the collector's notice does (the live path hands it on without reading it back).
  const starts = [0];
  const sources = [BAR_SOURCE_CODE.sim];
  const nextIndex = new Int32Array(nSymbols).fill(PRELOAD);
  let k = 0;
  const call = () => {
    const si = k++ % nSymbols;
    starts[0] = T0 + nextIndex[si]++ * MIN;
    arbiter.onBarsWritten('1Min', symbols[si], starts, 0, 1, sources);
  };
  /** The same call with its key built beforehand (the heap run: no double computed on the bench's side). */
  const callWith = (key: number[]) => {
    const si = k++ % nSymbols;
    nextIndex[si]++;
    arbiter.onBarsWritten('1Min', symbols[si], key, 0, 1, sources);
  };
  const keysAhead = (n: number): number[][] => {
    const at = Int32Array.from(nextIndex);
    return Array.from({ length: n }, (_, i) => {
      const si = (k + i) % nSymbols;
      return [T0 + at[si]++ * MIN];
    });
  };

  for (let i = 0; i < warmCalls; i++) call();
  await tick();

  // The median, not the mean: one pause of the machine during the 10,000 would swamp a mean.
  const timer = new Float64Array(10_000);
  for (let i = 0; i < timer.length; i++) {
    const a = process.hrtime.bigint();
    timer[i] = Number(process.hrtime.bigint() - a);
  }
  const timerOverheadUs = summarize(Array.from(timer)).p50 / 1000;

  const samples = new Float64Array(calls);
  let taken = 0;
  const timed = async (n: number) => {
    await writeAhead(Math.min(calls, taken + n) - taken);
    await tick();
    const before = delivered;
    const end = Math.min(calls, taken + n);
    for (let i = taken; i < end; i++) {
      const a = process.hrtime.bigint();
      call();
      samples[i] = Number(process.hrtime.bigint() - a) / 1000;
    }
    if (delivered - before !== end - taken) throw new Error(`expected ${end - taken} bars handed on, got ${delivered - before}`);
    taken = end;
  };

  const finish = async (): Promise<ResolutionFigures> => {
    await writeAhead(heapCalls + turnCalls);
    await tick();

    // Allocation: an untimed run between two forced GCs, counting any GC the run itself caused. Its
    // keys are built before (a double computed in the bench's loop would be a heap number of its own).
    const heapKeys = keysAhead(heapCalls);
    let gcs = 0;
    const obs = new PerformanceObserver((list) => {
      gcs += list.getEntries().length;
    });
    gc();
    await tick();
    obs.observe({ entryTypes: ['gc'] });
    const heap0 = newSpaceUsed();
    for (let i = 0; i < heapCalls; i++) callWith(heapKeys[i]);
    const heap1 = newSpaceUsed();
    await tick();
    obs.disconnect();
    await tick();

    // One key per event-loop turn, as messages arrive: includes the checkpoint write it queues.
    const turn = new Float64Array(turnCalls);
    for (let i = 0; i < turnCalls; i++) {
      const a = process.hrtime.bigint();
      call();
      await tick(); // the queued checkpoint write runs in this turn's check phase
      turn[i] = Number(process.hrtime.bigint() - a) / 1000;
    }
    if (lastStart[0] === 0) throw new Error('nothing was handed on');
    await arbiter.shutdown();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
    return {
      symbols: nSymbols,
      calls,
      us: summarize(samples as unknown as number[]),
      timer_overhead_us: timerOverheadUs,
      heap_bytes_per_call: (heap1 - heap0) / heapCalls,
      gcs_during_heap_run: gcs,
      per_turn_with_checkpoint_us: summarize(turn as unknown as number[]),
      prefill_s: prefillS,
    };
  };
  return { timed, finish };
}

/**
 * The memory floor of per-symbol work: a Map lookup by symbol and a touch of three small objects
 * per symbol (what any per-symbol state costs), timed per call like the arbiter. With one symbol
 * everything stays in L1; with 5,000 each call misses the caches. Measured in the same blocks.
 */
function memoryFloorRig(nSymbols: number, calls: number): { timed(n: number): void; us(): Summary } {
  const symbols = Array.from({ length: nSymbols }, (_, i) => symbolName(i));
  const state = new Map<string, { last: number; dirty: boolean; ladder: { serving: string; st: { up: boolean; fresh: number }; pre: { up: boolean } } }>();
  for (const s of symbols) state.set(s, { last: 0, dirty: false, ladder: { serving: 'cache', st: { up: true, fresh: 0 }, pre: { up: false } } });
  let k = 0;
  const call = () => {
    const f = state.get(symbols[k++ % nSymbols])!;
    const l = f.ladder;
    if (l.serving === 'cache' && l.st.up && !l.pre.up) l.st.fresh++;
    f.last++;
    f.dirty = !f.dirty;
  };
  for (let i = 0; i < Math.max(20_000, nSymbols * 2); i++) call();
  const samples = new Float64Array(calls);
  let taken = 0;
  return {
    timed(n: number) {
      const end = Math.min(calls, taken + n);
      for (let i = taken; i < end; i++) {
        const a = process.hrtime.bigint();
        call();
        samples[i] = Number(process.hrtime.bigint() - a) / 1000;
      }
      taken = end;
    },
    us: () => summarize(Array.from(samples.subarray(0, taken))),
  };
}

/**
 * 1 and 5,000 symbols measured in alternating blocks of calls in the same process, so the noise
 * of a shared machine (other processes, interrupts) falls on both alike; the memory floor's two
 * rigs in the same blocks, each right after its arbiter's.
 */
async function resolutionPair(calls: number): Promise<[ResolutionFigures, ResolutionFigures, Summary, Summary]> {
  const one = await resolutionRig(1, calls);
  const many = await resolutionRig(5_000, calls);
  const floorOne = memoryFloorRig(1, calls);
  const floorMany = memoryFloorRig(5_000, calls);
  // A block is one minute's close for 5,000 symbols, or 5,000 minutes of the one symbol.
  const per = 5_000;
  for (let b = 0; b * per < calls; b++) {
    await one.timed(per);
    floorOne.timed(per);
    await many.timed(per);
    floorMany.timed(per);
  }
  return [await one.finish(), await many.finish(), floorOne.us(), floorMany.us()];
}

/**
 * One collector notice at a minute's close, timed per notice and divided per bar
 * (fixtures/arbiter-notice-rig.ts): 5,000 symbols' minute against one symbol's 5,000 minutes,
 * alternating notice by notice, the memory floor walking each notice in the same block.
 */
async function noticePair(notices: number) {
  const per = 5_000;
  const one = await noticeRig([symbolName(0)], per, notices);
  const many = await noticeRig(
    Array.from({ length: per }, (_, i) => symbolName(i)),
    per,
    notices,
  );
  for (let i = 0; i < notices; i++) {
    await one.timed();
    await many.timed();
  }
  return { one_symbol: await one.finish(), five_thousand_symbols: await many.finish() };
}

async function endToEnd(n: number, rounds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-arbiter-e2e-'));
  const sup = new Supervisor({
    // The reader starts first, so the writer's link to it is up when the writer sends its raw port.
    actors: [
      { name: 'reader', module: new URL('./fixtures/arbiter-reader-actor.ts', import.meta.url), config: { dataDir: dir, peer: 'writer' } },
      { name: 'writer', module: new URL('./fixtures/arbiter-writer-actor.ts', import.meta.url), config: { dataDir: dir, peer: 'reader' }, peers: ['reader'] },
    ],
    clock: { kind: 'real' },
    log: silent,
    logLevel: 'silent',
    policy: { warmSpares: false },
  });
  await sup.start();
  const writer = sup.handle<WriterRequests>('writer');
  const reader = sup.handle<ReaderRequests>('reader');
  // Warm both paths, then alternate rounds so drift on a shared machine hits both alike.
  await writer.call('run', { n: 200, mode: 'raw' });
  await writer.call('run', { n: 200, mode: 'lmdb' });
  await reader.call('take', {});
  const acc = { lmdbFromWrite: [] as number[], lmdbFromSent: [] as number[], put: [] as number[], raw: [] as number[], misses: 0 };
  for (let r = 0; r < rounds; r++) {
    const per = Math.ceil(n / rounds);
    await writer.call('run', { n: per, mode: 'raw' });
    acc.raw.push(...(await reader.call('take', {})).fromSentUs);
    const res = await writer.call('run', { n: per, mode: 'lmdb' });
    const got = await reader.call('take', {});
    acc.put.push(...res.putUs);
    acc.lmdbFromWrite.push(...got.fromWriteUs);
    acc.lmdbFromSent.push(...got.fromSentUs);
    acc.misses += got.misses;
  }
  await sup.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    raw_post_message_us: summarize(acc.raw),
    key_sent_to_bar_resolved_us: summarize(acc.lmdbFromSent),
    write_start_to_bar_resolved_us: summarize(acc.lmdbFromWrite),
    put_us: summarize(acc.put),
    read_misses: acc.misses,
  };
}

/** Symbols the full path collects each cycle: every one of their bars is a sample. */
function fullPathSymbols(n: number): string[] {
  return Array.from({ length: n }, (_, i) => symbolName(i));
}

/** Collection cycles until `samples` bars reached the probe (at most `maxMinutes` cycles). */
async function fullPath(samples: number, nSymbols: number, maxMinutes: number) {
  const symbols = fullPathSymbols(nSymbols);
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-bench-arbiter-full-'));
  const config = loadConfig({
    env: {},
    overrides: {
      data_dir: dir,
      log: { level: 'silent' },
      // Only our collectNow calls collect: the scheduled cycles are a day apart.
      collector: { autostart: true, symbols, bar_size: '1Min', backfill_days: 1, market_hours_interval_s: 86_400, off_hours_interval_s: 86_400 },
      feed: { preload_bars: 20 },
    },
  });
  const cfg = actorConfigs(config);
  const ctl = new SharedClockController(T0 + 5_000);
  const sup = new Supervisor({
    actors: [
      { name: 'collector', module: new URL('../src/actors/collector/actor.ts', import.meta.url), config: cfg.collector, peers: ['arbiter'] },
      { name: 'arbiter', module: new URL('../src/actors/arbiter/actor.ts', import.meta.url), config: cfg.arbiter, peers: ['collector', 'trader'] },
      { name: 'trader', module: new URL('./fixtures/arbiter-trader-probe.ts', import.meta.url), config: { dataDir: dir }, peers: ['arbiter'] },
    ],
    clock: ctl.spec,
    log: silent,
    logLevel: 'silent',
    policy: { warmSpares: false },
  });
  await sup.start();
  const collector = sup.handle<CollectorRequests>('collector');
  const probe = sup.handle<ProbeRequests>('trader');
  await probe.call('subscribe', { symbols, barSize: '1Min' });
  await collector.call('collectNow', {});
  const lat: number[] = [];
  // Bars a cycle did not deliver within its wait: a later one that does deliver them counts them late.
  const unseen = new Set<string>();
  let late = 0;
  let cycles = 0;
  // A minute in which the simulated market made no trade for a symbol (after the 16:00 close, most
  // often) has no bar in the cache: nothing to deliver, so no sample and no miss. Counted apart.
  let noBar = 0;
  let minutesWithNoBar = 0;
  for (let m = 0; lat.length < samples && m < maxMinutes; m++) {
    cycles++;
    ctl.advance(MIN);
    await new Promise((r) => setTimeout(r, 20)); // the workers' clocks follow the broadcast
    const want = ctl.now() - 5_000 - MIN;
    const t0 = wallMs();
    await collector.call('collectNow', {});
    // Wait only for the bars the cache holds; asked again when those came, as a bar may be
    // committed a moment after collectNow returned (that one is owed too).
    const held = new Set(await probe.call('held', { symbols, barSize: '1Min', start: want }));
    const seen = new Set<string>();
    const waiting = () => {
      for (const sym of held) if (!seen.has(sym)) return true;
      return false;
    };
    // Waits up to 5 s for the cycle's bars: on a loaded machine a slow cycle is a sample, not a miss.
    const end = Date.now() + 5_000;
    for (;;) {
      while (Date.now() < end && waiting()) {
        for (const b of (await probe.call('take', {})).bars) {
          if (b.start !== want && unseen.delete(`${b.symbol}@${b.start}`)) late++;
          if (b.start !== want || seen.has(b.symbol)) continue;
          seen.add(b.symbol);
          lat.push((b.at - t0) * 1000);
        }
        if (waiting()) await new Promise((r) => setTimeout(r, 1));
      }
      const rest = symbols.filter((sym) => !seen.has(sym) && !held.has(sym));
      if (rest.length === 0 || Date.now() >= end) break;
      const more = await probe.call('held', { symbols: rest, barSize: '1Min', start: want });
      if (more.length === 0) break;
      for (const sym of more) held.add(sym);
    }
    let none = 0;
    for (const sym of symbols) {
      if (seen.has(sym)) continue;
      if (held.has(sym)) unseen.add(`${sym}@${want}`);
      else none++;
    }
    noBar += none;
    if (none > 0) minutesWithNoBar++;
  }
  await sup.stop();
  ctl.close();
  rmSync(dir, { recursive: true, force: true });
  return { collect_now_to_trader_us: summarize(lat), missing: unseen.size, late, cycles, no_bar: noBar, minutes_with_no_bar: minutesWithNoBar };
}

export async function run(opts: { quick?: boolean } = {}): Promise<Record<string, unknown>> {
  const quick = Boolean(opts.quick);
  const rssStart = rssMiB();
  const [one, many, floorOne, floorMany] = await resolutionPair(quick ? 20_000 : 200_000);
  const ratioP50 = many.us.p50 / one.us.p50;
  const ratioP99 = many.us.p99 / one.us.p99;
  const floorRatioP99 = floorMany.p99 / floorOne.p99;
  console.log('\narbiter: bar resolution in the arbiter thread (µs per key: ladder + send; the notice says the held source, so no LMDB read)');
  console.log(
    table(
      ['symbols', 'calls', 'p50', 'p99', 'p99.9', 'max', 'heap B/call', 'GCs', 'turn+ckpt p50', 'p99'],
      [one, many].map((r) => [
        String(r.symbols),
        String(r.calls),
        fmt(r.us.p50, 2),
        fmt(r.us.p99, 2),
        fmt(r.us.p999, 2),
        fmt(r.us.max, 0),
        fmt(r.heap_bytes_per_call, 2),
        String(r.gcs_during_heap_run),
        fmt(r.per_turn_with_checkpoint_us.p50, 2),
        fmt(r.per_turn_with_checkpoint_us.p99, 2),
      ]),
    ),
  );
  console.log(
    `timer overhead (included): ~${fmt(one.timer_overhead_us, 3)} µs; 5000/1 ratio: p50 ${fmt(ratioP50, 2)}x, p99 ${fmt(ratioP99, 2)}x (goal: p99 under 10 µs; the 1.5x goal is held per notice, below)`,
  );
  console.log(
    `memory floor (Map lookup + three per-symbol objects, same blocks): 1 symbol p50 ${fmt(floorOne.p50, 2)} p99 ${fmt(floorOne.p99, 2)} µs; 5000 p50 ${fmt(floorMany.p50, 2)} p99 ${fmt(floorMany.p99, 2)} µs; ratio p99 ${fmt(floorRatioP99, 2)}x; the arbiter's p99 ratio over the floor's: ${fmt(ratioP99 / floorRatioP99, 2)}`,
  );
  console.log(`${many.us.p99 < 10 ? 'PASS' : 'FAIL'} resolution_p99_under_10us (${fmt(many.us.p99, 2)} µs per call at 5,000 symbols)`);

  const notices = await noticePair(quick ? 200 : 1_000);
  const n1 = notices.one_symbol;
  const n5 = notices.five_thousand_symbols;
  const noticeP50 = n5.arbiter_us_per_bar.p50 / n1.arbiter_us_per_bar.p50;
  const noticeP99 = n5.arbiter_us_per_bar.p99 / n1.arbiter_us_per_bar.p99;
  const noticeP999 = n5.arbiter_us_per_bar.p999 / n1.arbiter_us_per_bar.p999;
  const noticeFloorP99 = n5.floor_us_per_bar.p99 / n1.floor_us_per_bar.p99;
  console.log(`\narbiter: one collector notice of ${n1.bars_per_notice} keys, as actor.ts handles it (ns per bar, timed per notice; ${n1.notices} notices each, alternating)`);
  console.log(
    table(
      ['notice', 'p50', 'p99', 'p99.9', 'max', 'floor p50', 'floor p99', 'floor p99.9', 'notices with a GC'],
      [
        ['1 symbol, 5,000 minutes', n1],
        ['5,000 symbols, 1 minute', n5],
      ].map(([name, r]) => {
        const x = r as typeof n1;
        const ns = (v: number) => fmt(v * 1000, 1);
        return [
          name as string,
          ns(x.arbiter_us_per_bar.p50),
          ns(x.arbiter_us_per_bar.p99),
          ns(x.arbiter_us_per_bar.p999),
          ns(x.arbiter_us_per_bar.max),
          ns(x.floor_us_per_bar.p50),
          ns(x.floor_us_per_bar.p99),
          ns(x.floor_us_per_bar.p999),
          String(x.notices_with_gc),
        ];
      }),
    ),
  );
  console.log(`5000/1 ratio per notice: p50 ${fmt(noticeP50, 2)}x, p99 ${fmt(noticeP99, 2)}x, p99.9 ${fmt(noticeP999, 2)}x; memory floor p99 ${fmt(noticeFloorP99, 2)}x`);
  console.log(`${noticeP99 <= 1.5 ? 'PASS' : 'FAIL'} 5000_symbols_within_1.5x_of_one_at_p99 (per notice, per bar: ${fmt(noticeP99, 2)}x)`);

  // 500 keys per round: a round of durable puts (each waits for fsync) stays well inside the 10 s call timeout.
  const e2e = await endToEnd(quick ? 300 : 10_000, quick ? 2 : 20);
  console.log('\narbiter: collector write -> trading loop has the bar, between two worker threads (µs)');
  console.log(
    table(
      ['path', 'p50', 'p99', 'p99.9', 'max', 'n'],
      [
        ['raw postMessage (no LMDB)', e2e.raw_post_message_us],
        ['key sent -> bar read (peer link + readInto)', e2e.key_sent_to_bar_resolved_us],
        ['write start -> bar read (await put incl. fsync)', e2e.write_start_to_bar_resolved_us],
        ['  of which await put', e2e.put_us],
      ].map(([name, s]) => {
        const x = s as Summary;
        return [name as string, fmt(x.p50), fmt(x.p99), fmt(x.p999), fmt(x.max, 0), String(x.n)];
      }),
    ),
  );
  console.log(`read misses: ${e2e.read_misses} (goal: p99 under 500 µs)`);

  const fullSymbols = quick ? 5 : 20;
  const full = await fullPath(quick ? 50 : 10_000, fullSymbols, quick ? 10 : 600);
  console.log(`\narbiter: full path, real collector (sim, ${fullSymbols} symbols a cycle) -> real arbiter -> trader probe (µs from the collectNow call to each bar at the probe)`);
  console.log(
    `p50 ${fmt(full.collect_now_to_trader_us.p50)}  p99 ${fmt(full.collect_now_to_trader_us.p99)}  p99.9 ${fmt(full.collect_now_to_trader_us.p999)}  max ${fmt(full.collect_now_to_trader_us.max, 0)}  n=${full.collect_now_to_trader_us.n} over ${full.cycles} cycles  late (a later cycle delivered them)=${full.late}  missing (in the cache, never delivered)=${full.missing}`,
  );
  console.log(
    `bars not in the cache by the end of their cycle's wait (the simulated market made no trade that minute; not samples, not misses): ${full.no_bar} symbol-minutes, in ${full.minutes_with_no_bar} of ${full.cycles} minutes`,
  );
  const rssEnd = rssMiB();
  console.log(`main-thread RSS: ${fmt(rssStart)} MiB at start, ${fmt(rssEnd)} MiB at end`);
  return {
    resolution: {
      one_symbol: one,
      five_thousand_symbols: many,
      ratio_p50: ratioP50,
      ratio_p99: ratioP99,
      memory_floor: { one_symbol_us: floorOne, five_thousand_symbols_us: floorMany, ratio_p99: floorRatioP99 },
      per_notice: { ...notices, ratio_p50: noticeP50, ratio_p99: noticeP99, ratio_p999: noticeP999, memory_floor_ratio_p99: noticeFloorP99 },
      goal_row: 'per_notice',
    },
    end_to_end: e2e,
    full_path: full,
    rss_mib: { start: rssStart, end: rssEnd },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await run({ quick: process.argv.includes('--quick') });
}
