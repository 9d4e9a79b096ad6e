/**
 * The `barkeep` command: serve (what `npm start` runs), check, bars, backfill.
 */
import { loadConfig, ConfigError } from './config/load.ts';
import { createLogger } from './runtime/log.ts';

const USAGE = `usage: barkeep <command> [options]

commands:
  serve                                   run the engine and its HTTP API (npm start)
  check massive|alpaca [--symbol QQQ] [--duration 30]
                                          prove a vendor key works: connection, history, real-time
  bars SYMBOL [--bar-size 1Min] [--limit 20] [--from T] [--to T] [--json]
                                          print cached bars
  backfill SYMBOL --from YYYY-MM-DD [--to YYYY-MM-DD] [--bar-size 1Min]
                                          fill the cache from the configured source
  backtest --from T [--to T] [--symbols QQQ,SPY] [--strategy sma-crossover] [--param k=v] [--grid k=a:b:s]
                                          run a strategy (or a sweep) over cached bars, as live
  replay --from T [--to T]                the bars the live trader was handed, and why it did what it did

configuration: config/default.yaml, then the file BARKEEP_CONFIG names, then the environment
(see README.md).`;

async function serve(): Promise<number> {
  const config = loadConfig();
  const log = createLogger({ level: config.log.level });
  const { startEngine } = await import('./server/engine.ts');
  let engine: Awaited<ReturnType<typeof startEngine>>;
  try {
    engine = await startEngine(config, { log });
  } catch (err) {
    log.fatal({ err }, 'barkeep could not start');
    log.flush();
    // A refusal the user must act on gets one plain line, whatever the log format.
    const code = (err as { code?: unknown }).code;
    if (code === 'DATA_DIR_IN_USE' || code === 'EADDRINUSE') process.stderr.write(`barkeep: ${(err as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      const hard = setTimeout(() => {
        log.error('shutdown took too long; exiting');
        log.flush();
        resolve(1);
      }, config.supervisor.shutdown_timeout_ms + 1000);
      hard.unref();
      engine.stop().then(
        () => {
          clearTimeout(hard);
          log.info('stopped');
          log.flush();
          resolve(0);
        },
        (err) => {
          log.error({ err }, 'shutdown failed');
          log.flush();
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
    case undefined:
      return serve();
    case 'check': {
      const { checkCommand } = await import('./cli/check.ts');
      return checkCommand(rest, { env: process.env, out: process.stdout });
    }
    case 'bars': {
      const config = loadConfig();
      const { barsCommand } = await import('./cli/bars.ts');
      return barsCommand(rest, { dataDir: config.data_dir, out: process.stdout, err: process.stderr });
    }
    case 'backfill': {
      const config = loadConfig();
      const { backfillCommand } = await import('./cli/backfill.ts');
      return backfillCommand(rest, { config, out: process.stdout, err: process.stderr });
    }
    case 'backtest': {
      const config = loadConfig();
      const { backtestCommand } = await import('./cli/backtest.ts');
      return backtestCommand(rest, { config, out: process.stdout, err: process.stderr });
    }
    case 'replay': {
      const config = loadConfig();
      const { replayCommand } = await import('./cli/replay.ts');
      return replayCommand(rest, { config, out: process.stdout, err: process.stderr });
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`barkeep: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Worker threads and sockets are closed by then; do not wait on stray timers.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`barkeep: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`barkeep: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
