/**
 * `barkeep check massive|alpaca [--symbol QQQ] [--duration 30] [--stream]`: the seed's connection
 * test. Four checks, one line each, PASS or FAIL with diagnostics (HTTP status, the vendor's
 * message, rate-limit state):
 *   1. key        the key is configured (nothing of it is printed)
 *   2. connection a small request (the last days' daily bars) is answered and the key accepted
 *   3. history    the last days of 1Min bars: count and newest bar
 *   4. real-time  --duration seconds of collection: REST polls about every 10 s, skipped when the
 *                 rate limit has no room (a free Massive key allows 5 a minute, checks 2–3
 *                 included), or the WebSocket stream with --stream (REST polling if it fails)
 * Exit 0 only when all pass, 1 when one fails, 2 on bad usage.
 *
 * Outside market hours "no new bars" is a PASS with a note; during the regular session the
 * newest bar must be younger than feed.cache_max_age_s (what the feed arbiter's cache rung needs).
 */
import { parseArgs } from 'node:util';
import { loadConfig, type ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { alpacaRestOptions } from '../config/actor-configs.ts';
import type { Bar } from '../market/bar.ts';
import { isValidSymbol } from '../market/bar.ts';
import { type Clock, RealClock } from '../market/clock.ts';
import { MarketCalendar } from '../market/calendar.ts';
import { AlpacaSource } from '../sources/alpaca/source.ts';
import { AlpacaStream, alpacaWsUrl, type AlpacaStreamFeed } from '../sources/alpaca/stream.ts';
import type { BarStream } from '../sources/massive/bar-stream.ts';
import { MassiveSource } from '../sources/massive/source.ts';
import { MassiveStream, massiveWsUrl } from '../sources/massive/stream.ts';
import { type HistoricalBarSource, SourceError } from '../sources/types.ts';
import { UsageError } from './args.ts';

export interface CheckIo {
  env: NodeJS.ProcessEnv;
  out: NodeJS.WritableStream;
  clock?: Clock;
}

const USAGE = `usage: barkeep check massive|alpaca [--symbol QQQ] [--duration 30] [--stream] [--ws-url URL]
  --symbol    ticker to fetch (default QQQ)
  --duration  seconds of real-time collection, 1..3600 (default 30)
  --stream    collect from the WebSocket stream (paid Massive plans; Alpaca iex) instead of REST polling
  --ws-url    stream URL (default: the config's ws_url)
Keys come from MASSIVE_API_KEY (or POLYGON_API_KEY) / APCA_API_KEY_ID + APCA_API_SECRET_KEY,
URLs from MASSIVE_REST_URL / APCA_API_DATA_URL or the config file.`;

const DAY = 86_400_000;
const MIN = 60_000;
const POLL_EVERY_MS = 10_000;

type Vendor = 'massive' | 'alpaca';

interface Options {
  vendor: Vendor;
  symbol: string;
  durationS: number;
  stream: boolean;
  wsUrl?: string;
}

function parse(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        symbol: { type: 'string' },
        duration: { type: 'string' },
        stream: { type: 'boolean' },
        'ws-url': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) throw new UsageError('');
  const [vendor, ...extra] = positionals;
  if (vendor !== 'massive' && vendor !== 'alpaca') throw new UsageError(`vendor must be massive or alpaca, got ${JSON.stringify(vendor ?? '')}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const symbol = (values.symbol ?? 'QQQ').toUpperCase();
  if (!isValidSymbol(symbol)) throw new UsageError(`--symbol ${JSON.stringify(values.symbol)} is not a valid ticker`);
  const durationS = values.duration === undefined ? 30 : Number(values.duration);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > 3600) {
    throw new UsageError(`--duration must be a whole number of seconds from 1 to 3600, got ${JSON.stringify(values.duration)}`);
  }
  return { vendor, symbol, durationS, stream: values.stream ?? false, wsUrl: values['ws-url'] };
}

interface Line {
  ok: boolean | 'skip';
  name: string;
  detail: string;
}

/** What differs between the vendors for the checks. */
interface Probe {
  source: HistoricalBarSource;
  /** Limiter and vendor rate-limit state, for diagnostics. */
  rateState(): string;
  /** A note on the data's timeliness (Massive DELAYED), if any. */
  delayNote(): string | undefined;
  openStream(): BarStream;
}

export async function checkCommand(argv: string[], io: CheckIo): Promise<number> {
  const write = (text: string) => io.out.write(`${text}\n`);
  let opts: Options;
  try {
    opts = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    // --help (the only usage error without a message) is a success.
    if (!err.message) {
      write(USAGE);
      return 0;
    }
    write(`barkeep check: ${err.message}`);
    write(USAGE);
    return 2;
  }
  const clock = io.clock ?? new RealClock();
  const lines: Line[] = [];
  const print = (line: Line) => {
    lines.push(line);
    const tag = line.ok === 'skip' ? 'SKIP' : line.ok ? 'PASS' : 'FAIL';
    write(`${tag}  ${line.name.padEnd(10)} ${line.detail}`);
  };

  let config: Config;
  try {
    config = loadConfig({ env: io.env });
  } catch (err) {
    print({ ok: false, name: 'config', detail: (err as ConfigError).message });
    return 1;
  }
  write(`barkeep check ${opts.vendor}: ${opts.symbol}, ${opts.durationS} s of real-time collection${opts.stream ? ' (stream)' : ''}`);

  const probe = makeProbe(opts, config, clock, print);
  if (!probe) {
    for (const name of ['connection', 'history', 'real-time']) print({ ok: 'skip', name, detail: 'skipped: no key' });
    write(`FAILED: 0/${lines.length} checks passed`);
    return 1;
  }
  try {
    const connected = await checkConnection(probe, opts, clock, print);
    if (!connected) {
      for (const name of ['history', 'real-time']) print({ ok: 'skip', name, detail: 'skipped: the connection check failed' });
    } else {
      await checkHistory(probe, opts, clock, print);
      await checkRealTime(probe, opts, config, clock, print);
    }
  } finally {
    await probe.source.close?.();
  }
  const passed = lines.filter((l) => l.ok === true).length;
  const all = lines.every((l) => l.ok === true);
  write(`${all ? 'OK' : 'FAILED'}: ${passed}/${lines.length} checks passed`);
  return all ? 0 : 1;
}

function makeProbe(opts: Options, config: Config, clock: Clock, print: (l: Line) => void): Probe | undefined {
  // Checks fail fast: one retry, not the collector's patience.
  const common = { clock, maxRetries: 1 };
  if (opts.vendor === 'massive') {
    const m = config.massive;
    if (!m.api_key) {
      print({ ok: false, name: 'key', detail: 'no Massive key: set MASSIVE_API_KEY (or POLYGON_API_KEY) or massive.api_key' });
      return undefined;
    }
    print({ ok: true, name: 'key', detail: 'Massive key configured' });
    const source = new MassiveSource({
      ...common,
      apiKey: m.api_key,
      restUrl: m.rest_url,
      rateLimitPerMin: m.rate_limit_per_min,
      timeoutMs: m.timeout_ms,
    });
    const wsUrl = opts.wsUrl ?? massiveWsUrl(m.rest_url, m.ws_url);
    return {
      source,
      rateState: () => limiterState(source),
      delayNote: () => (source.lastStatus === 'DELAYED' ? 'Massive says DELAYED: this plan gets delayed data' : undefined),
      openStream: () => new MassiveStream({ apiKey: m.api_key!, url: wsUrl, clock }),
    };
  }
  const a = config.alpaca;
  if (!a.api_key_id || !a.api_secret_key) {
    print({ ok: false, name: 'key', detail: 'no Alpaca key: set APCA_API_KEY_ID and APCA_API_SECRET_KEY' });
    return undefined;
  }
  print({ ok: true, name: 'key', detail: `Alpaca key id and secret configured (feed ${a.feed})` });
  const source = new AlpacaSource({ ...common, ...alpacaRestOptions(a) });
  const streamFeed: AlpacaStreamFeed = a.feed === 'sip' || a.feed === 'delayed_sip' ? a.feed : 'iex';
  const wsUrl = opts.wsUrl ?? alpacaWsUrl(a.data_url, a.ws_url, streamFeed);
  return {
    source,
    rateState: () => {
      const v = source.lastRateLimit;
      const vendor = v?.remaining !== undefined ? `; Alpaca says ${v.remaining}/${v.limit ?? '?'} left` : '';
      return `${limiterState(source)}${vendor}`;
    },
    delayNote: () => undefined,
    openStream: () => new AlpacaStream({ keyId: a.api_key_id!, secretKey: a.api_secret_key!, feed: streamFeed, url: wsUrl, clock }),
  };
}

function limiterState(source: HistoricalBarSource): string {
  const s = source.stats();
  const left = Number.isFinite(s.rateLimitRemaining) ? `${s.rateLimitRemaining}/${s.rateLimitPerMin}` : 'unlimited';
  return `rate limit ${left} left this minute; requests ${s.requests}, retries ${s.retries}, 429s ${s.rateLimited}`;
}

/** HTTP status, code, the vendor's own words, and the rate-limit state. */
function failure(err: unknown, probe: Probe): string {
  if (err instanceof SourceError) {
    // The adapters' messages already name the path, the HTTP status and the vendor's text.
    const status = err.status !== undefined && !err.message.includes(`HTTP ${err.status}`) ? ` (HTTP ${err.status})` : '';
    const vendor = err.vendorMessage && !err.message.includes(err.vendorMessage) ? `; vendor says "${err.vendorMessage}"` : '';
    return `${err.code}: ${err.message}${status}${vendor} (${probe.rateState()})`;
  }
  return `${String((err as Error)?.message ?? err)} (${probe.rateState()})`;
}

function iso(ts: number): string {
  return new Date(ts).toISOString().replace('.000Z', 'Z');
}

function age(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 2 * 3_600_000) return `${Math.round(ms / MIN)} min`;
  if (ms < 2 * DAY) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / DAY).toFixed(1)} days`;
}

async function checkConnection(probe: Probe, opts: Options, clock: Clock, print: (l: Line) => void): Promise<boolean> {
  const now = clock.now();
  try {
    const bars = await probe.source.fetchBars(opts.symbol, '1Day', now - 10 * DAY, now);
    const note = probe.delayNote();
    print({
      ok: true,
      name: 'connection',
      detail: `key accepted (HTTP 200); ${bars.length} daily bars in the last 10 days${note ? `; ${note}` : ''} (${probe.rateState()})`,
    });
    return true;
  } catch (err) {
    print({ ok: false, name: 'connection', detail: failure(err, probe) });
    return false;
  }
}

async function checkHistory(probe: Probe, opts: Options, clock: Clock, print: (l: Line) => void): Promise<void> {
  const now = clock.now();
  try {
    const bars = await probe.source.fetchBars(opts.symbol, '1Min', now - 5 * DAY, now);
    const stats = probe.source.stats();
    const skipped = stats.malformed > 0 ? `; ${stats.malformed} malformed bars skipped` : '';
    if (bars.length === 0) {
      print({ ok: false, name: 'history', detail: `no 1Min bars for ${opts.symbol} in the last 5 days${skipped} (${probe.rateState()})` });
      return;
    }
    const newest = bars[bars.length - 1].start;
    print({
      ok: true,
      name: 'history',
      detail: `${bars.length} 1Min bars for ${opts.symbol} in the last 5 days; newest ${iso(newest)} (${age(now - newest)} ago)${skipped}`,
    });
  } catch (err) {
    print({ ok: false, name: 'history', detail: failure(err, probe) });
  }
}

async function checkRealTime(probe: Probe, opts: Options, config: Config, clock: Clock, print: (l: Line) => void): Promise<void> {
  const started = clock.now();
  const session = new MarketCalendar().sessionAt(started);
  const maxAge = config.feed.cache_max_age_s * 1000;
  let streamNote = '';
  if (opts.stream) {
    const stream = probe.openStream();
    const bars: Bar[] = [];
    stream.on('bar', (b) => {
      if (b.symbol === opts.symbol) bars.push(b);
    });
    let dropped = 0;
    stream.on('status', (s) => {
      if (s.state === 'reconnecting') dropped++;
    });
    try {
      stream.subscribe([opts.symbol]);
      await stream.connect();
      await clock.sleep(opts.durationS * 1000);
      const ok = stream.state === 'live' || bars.length > 0;
      const newest = bars.length > 0 ? Math.max(...bars.map((b) => b.start)) : undefined;
      const got = `stream live; ${bars.length} bars in ${opts.durationS} s${newest !== undefined ? `, newest ${iso(newest)}` : ''}${dropped ? `; dropped ${dropped} times` : ''}`;
      if (!ok) {
        print({ ok: false, name: 'real-time', detail: `${got}; stream ended ${stream.state}` });
      } else if (bars.length === 0 && session === 'regular' && opts.durationS >= 65) {
        print({ ok: false, name: 'real-time', detail: `${got}: no bar in over a minute of the regular session` });
      } else {
        const note = bars.length > 0 ? '' : session === 'regular' ? ' (too short to expect a bar; try --duration 90)' : ' (market closed: no bars expected)';
        print({ ok: true, name: 'real-time', detail: `${got}${note}` });
      }
      return;
    } catch (err) {
      // The collector falls back to REST polling when the stream fails; so does the check.
      streamNote = `stream failed (${err instanceof SourceError ? `${err.code}: ${err.message}` : String(err)}); fell back to REST polling: `;
    } finally {
      await stream.close();
    }
  }

  const seen = new Map<number, Bar>();
  let polls = 0;
  let skipped = 0;
  let baseline: number | undefined;
  let newBars = 0;
  const end = started + opts.durationS * 1000;
  // Polls at 0, 10, 20 s ... and one at the end of the duration.
  const ticks: number[] = [];
  for (let t = started; t < end; t += POLL_EVERY_MS) ticks.push(t);
  ticks.push(end);
  for (const tick of ticks) {
    if (tick > clock.now()) await clock.sleep(tick - clock.now());
    // Only the first poll may wait for the limiter; later ones are skipped when it has no room.
    if (polls > 0 && probe.source.stats().rateLimitRemaining < 1) {
      skipped++;
    } else {
      const now = clock.now();
      const from = baseline !== undefined ? Math.max(baseline + 1, now - 30 * MIN) : now - 30 * MIN;
      try {
        const bars = await probe.source.fetchBars(opts.symbol, '1Min', from, now + 1);
        polls++;
        for (const b of bars) {
          if (baseline !== undefined && b.start > baseline && !seen.has(b.start)) newBars++;
          seen.set(b.start, b);
        }
        if (baseline === undefined) baseline = bars.length > 0 ? bars[bars.length - 1].start : now - 30 * MIN;
      } catch (err) {
        print({ ok: false, name: 'real-time', detail: `${streamNote}poll ${polls + 1} failed: ${failure(err, probe)}` });
        return;
      }
    }
  }
  const now = clock.now();
  const newest = seen.size > 0 ? Math.max(...seen.keys()) : undefined;
  const skippedNote = skipped > 0 ? `, ${skipped} skipped to stay within ${probe.source.stats().rateLimitPerMin}/min` : '';
  const summary = `${streamNote}${polls} REST poll${polls === 1 ? '' : 's'} in ${opts.durationS} s${skippedNote}; ${newBars} new bars; newest ${
    newest !== undefined ? `${iso(newest)} (${age(now - newest)} old)` : 'none in the last 30 min'
  }`;
  const fresh = newest !== undefined && now - newest <= maxAge;
  if (session === 'closed') {
    print({ ok: true, name: 'real-time', detail: `${summary}${newBars === 0 ? ' (market closed: no new bars expected)' : ''}` });
  } else if (fresh) {
    print({ ok: true, name: 'real-time', detail: summary });
  } else if (session === 'regular') {
    const delay = probe.delayNote();
    print({
      ok: false,
      name: 'real-time',
      detail: `${summary}: during the regular session the newest bar must be under ${age(maxAge)} old for the cache rung${delay ? `; ${delay}` : ''} (${probe.rateState()})`,
    });
  } else {
    print({ ok: true, name: 'real-time', detail: `${summary} (${session}-market hours: bars may be sparse)` });
  }
}
