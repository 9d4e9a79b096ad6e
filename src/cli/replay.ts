/**
 * `barkeep replay --from T [--to T]`: the bars the live trader was handed (recorded by the arbiter,
 * with the rung that served each), fed again through the strategy, risk and paper broker, one line
 * per bar with what the strategy said and why, what became of it, and what the live journal holds
 * for the same order id. The strategy, symbols and bar size default to the live session's (the
 * trader's checkpoint), else the config's trader section.
 *
 * Exit codes: 0 done, 1 nothing recorded in the span or the replay failed, 2 bad arguments.
 */
import { DateTime } from 'luxon';
import { MARKET_ZONE } from '../market/calendar.ts';
import type { LiveStart } from '../actors/trader/protocol.ts';
import { specDefaults } from '../backtest/defaults.ts';
import { replay, type ReplayRow } from '../backtest/replay.ts';
import { parseValue } from '../backtest/sweep.ts';
import type { Config } from '../config/schema.ts';
import { isValidSymbol } from '../market/bar.ts';
import { BAR_SIZES, isBarSize, type BarSize } from '../market/bar-size.ts';
import { TIME_BOUND_HELP, parseTimeBound } from '../storage/bar-query.ts';
import { openStorage, storageExists, storagePath } from '../storage/storage.ts';
import { parseCommandArgs, UsageError } from './args.ts';

export interface ReplayCommandIo {
  config: Config;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

/** The last instant a Date can hold. */
const LAST_MS = 8_640_000_000_000_000;

const USAGE = `usage: barkeep replay --from TIME [--to TIME] [--symbols QQQ,SPY] [--bar-size ${BAR_SIZES.join('|')}]
                     [--strategy NAME] [--strategy-module PATH] [--param name=value] [--json]
  --from, --to   the span of bar starts; TIME is ${TIME_BOUND_HELP}
                 (--to: a date means through its end; default: everything recorded since --from)
  --symbols      only these symbols (default: every symbol the trader was handed)
  --bar-size     default: the live session's bar size
  --strategy, --strategy-module, --param
                 replay with another strategy or parameters (default: the live session's)
  --json         print the rows as one JSON object`;

function replayArgs(argv: string[]) {
  return parseCommandArgs(argv, {
    from: { type: 'string' },
    to: { type: 'string' },
    symbols: { type: 'string' },
    'bar-size': { type: 'string' },
    strategy: { type: 'string' },
    'strategy-module': { type: 'string' },
    param: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
}

export async function replayCommand(argv: string[], io: ReplayCommandIo): Promise<number> {
  let values: ReturnType<typeof replayArgs>['values'];
  try {
    ({ values } = replayArgs(argv));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usage(io, err.message);
  }
  if (values.help) {
    io.out.write(`${USAGE}\n`);
    return 0;
  }
  let from: number;
  // Everything recorded since --from: the engine may run on an accelerated clock, ahead of this one.
  let to = LAST_MS;
  let symbols: string[] | null = null;
  const params: Record<string, unknown> = {};
  try {
    if (values.from === undefined) throw new UsageError('--from is required');
    const f = parseTimeBound(values.from as string, 'from');
    if (f === undefined) throw new UsageError(`--from: ${JSON.stringify(values.from)} is not ${TIME_BOUND_HELP}`);
    from = f;
    if (values.to !== undefined) {
      const text = values.to as string;
      const b = parseTimeBound(text, 'to');
      if (b === undefined) throw new UsageError(`--to: ${JSON.stringify(text)} is not ${TIME_BOUND_HELP}`);
      to = /^\d{4}-\d{2}-\d{2}$/.test(text.trim()) ? b + 1 : b;
    }
    if (from >= to) throw new UsageError('--from: it is not before --to');
    if (values.symbols !== undefined) {
      symbols = (values.symbols as string)
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean);
      for (const s of symbols) if (!isValidSymbol(s)) throw new UsageError(`--symbols: ${JSON.stringify(s)} is not a symbol`);
      if (symbols.length === 0) throw new UsageError('--symbols: give at least one symbol');
    }
    if (values['bar-size'] !== undefined && !isBarSize(values['bar-size'])) throw new UsageError(`--bar-size: ${JSON.stringify(values['bar-size'])} is not one of ${BAR_SIZES.join(', ')}`);
    for (const p of (values.param as string[] | undefined) ?? []) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(p);
      if (!m) throw new UsageError(`--param: ${JSON.stringify(p)} is not name=value`);
      params[m[1]] = parseValue(m[2]);
    }
  } catch (err) {
    if (err instanceof UsageError) return usage(io, err.message);
    throw err;
  }

  const dataDir = storagePath(io.config.data_dir);
  if (!storageExists(dataDir)) {
    io.err.write(`barkeep replay: no data at ${dataDir}\n`);
    return 1;
  }
  const storage = openStorage({ path: dataDir, sourcePrecedence: io.config.storage.source_precedence });
  try {
    const d = specDefaults(io.config);
    // The live session's settings, as the trader checkpointed them.
    const live = storage.checkpoints.get<{ live: LiveStart | null }>('trader')?.live ?? null;
    const barSize = ((values['bar-size'] as BarSize | undefined) ?? live?.bar_size ?? d.bar_size) as BarSize;
    const module = values['strategy-module'] as string | undefined;
    const strategy = (values.strategy as string | undefined) ?? (module ? 'module' : (live?.strategy ?? d.strategy));
    const ownParams = Object.keys(params).length > 0 || values.strategy !== undefined || module !== undefined;
    const result = await replay({
      storage,
      deliveries: storage.deliveries,
      barSize,
      warmupBars: io.config.feed.preload_bars,
      spec: {
        ...d,
        bar_size: barSize,
        symbols,
        from,
        to,
        strategy,
        strategy_module: module ?? (strategy === 'module' ? d.strategy_module : null),
        params: ownParams ? params : (live?.strategy_params ?? d.params),
        // The live session's exits (null: it ran without), else the config's.
        exits: live && live.exits !== undefined ? live.exits : d.exits,
      },
    });
    if (values.json) {
      io.out.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    const held = Object.entries(result.initial_positions).map(([s, q]) => `${s} ${q}`);
    io.out.write(
      `replay of ${result.bars} ${barSize} bars handed to the trader, ${new Date(from).toISOString()} .. ${to === LAST_MS ? 'the last one recorded' : new Date(to).toISOString()}; strategy ${result.strategy} ${JSON.stringify(result.params)}; starting ${held.length ? `with ${held.join(', ')} (live journal)` : 'flat'}\n`,
    );
    for (const m of result.missing) io.err.write(`note: ${m.symbol} bar ${m.start} was handed on but is no longer in the cache\n`);
    for (const r of result.rows) io.out.write(`${line(r)}\n`);
    return 0;
  } catch (err) {
    io.err.write(`barkeep replay: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await storage.close();
  }
}

function usage(io: ReplayCommandIo, message: string): number {
  io.err.write(`barkeep replay: ${message}\n${USAGE}\n`);
  return 2;
}

function line(r: ReplayRow): string {
  const ny = DateTime.fromISO(r.bar_start, { zone: MARKET_ZONE }).toFormat('yyyy-LL-dd HH:mm');
  const head = `${ny} NY  ${r.symbol.padEnd(5)} ${r.rung.padEnd(15)} close ${r.close}`;
  if (r.signals.length === 0) return `${head}  | no signal`;
  return r.signals
    .map((s, i) => {
      const d = r.decisions[i];
      const tail = d ? ` -> ${d.detail}${d.client_order_id ? ` [${d.client_order_id}]` : ''}${d.live ? `; ${d.live}` : ''}` : '';
      return `${i === 0 ? head : ' '.repeat(head.length)}  | ${s}${tail}`;
    })
    .join('\n');
}
