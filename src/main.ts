/**
 * The `barkeep` command: serve (what `npm start` runs), check, bars, backfill, and the commands
 * that talk to a running server (status, orders, fills, kill, resume, config show).
 * Exit codes: 0 done, 1 failed, 2 bad usage (or a bad config).
 */
import { readFileSync } from 'node:fs';
import { loadConfig, loadConfigFrom, configLayers, ConfigError } from './config/load.ts';
import { configWarnings, settingsWithSources } from './config/sources.ts';
import { createLogger } from './runtime/log.ts';
import { resolveFormat, setLogOutput, startLogRotation } from './runtime/log-output.ts';
import { preloadActors } from './server/serve-actors.ts';
import { StartupTimer } from './server/startup-timer.ts';

const USAGE = `usage: barkeep <command> [options]     (barkeep <command> --help for its options)

commands:
  serve                                   run the engine and its HTTP API (npm start)
  status [--url URL]                      the running server: loop, positions, P&L, feed, last signals
  orders [--symbol S] [--since T] [--state S] [--csv]
                                          orders from the journal
  fills [--symbol S] [--since T] [--csv]  every fill
  kill [--flatten]                        engage the kill switch (--flatten closes every position)
  resume                                  release the kill switch
  config show [--local]                   every effective setting and where it came from
  check massive|alpaca [--symbol QQQ] [--duration 30]
                                          prove a vendor key works: connection, history, real-time
  bars SYMBOL [--bar-size 1Min] [--limit 20] [--from T] [--to T] [--json]
                                          print cached bars
  backfill SYMBOL --from YYYY-MM-DD [--to YYYY-MM-DD] [--bar-size 1Min]
                                          fill the cache from the configured source
  backtest --from T [--to T] [--symbols QQQ,SPY] [--strategy sma-crossover] [--param k=v] [--grid k=a:b:s]
                                          run a strategy (or a sweep) over cached bars, as live
  replay --from T [--to T]                the bars the live trader was handed, and why it did what it did

options everywhere: --help, --version. Server commands take --url (else BARKEEP_URL, else the
configured server.host:port) and send BARKEEP_API_TOKEN with POSTs.
configuration: config/default.yaml, then config/local.yaml (or the file BARKEEP_CONFIG names),
then the environment (see README.md).`;

const SERVE_USAGE = `usage: barkeep serve
  runs the collector, feed arbiter and trading loop, and the HTTP API on server.host:server.port.
  Run it as \`node bin/barkeep.mjs serve\` under a service manager (systemd, docker): SIGTERM then
  reaches barkeep itself, which flushes and exits 0. \`barkeep config show --local\` prints the
  settings it would use.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `barkeep ${pkg.version} (node ${process.version})`;
}

async function serve(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(`barkeep serve: unexpected argument ${JSON.stringify(args[0])}\n${SERVE_USAGE}\n`);
    return 2;
  }
  const timer = new StartupTimer();
  timer.mark('main');
  const layers = configLayers();
  const config = loadConfigFrom(layers);
  // Where the actors' threads log is decided before they spawn (they read it at spawn).
  setLogOutput({ format: resolveFormat(config.log.format, Boolean(process.stdout.isTTY)), file: config.log.file });
  timer.mark('config');
  // The actors' threads load their code while this thread loads the engine (the HTTP server,
  // storage) and checks the strategy: a cold start waits for the slower of the two, not the sum.
  // Nothing touches the data directory before the engine's lock (serve-actors.ts).
  const spares = preloadActors(config.log.level);
  const engineModule = import('./server/engine.ts');
  engineModule.catch(() => undefined);
  let live: string | null;
  try {
    const { checkBarSizes, checkIbkrLive, checkStrategy } = await import('./config/startup.ts');
    checkBarSizes(config);
    live = await checkIbkrLive(config);
    await checkStrategy(config);
  } catch (err) {
    spares.close();
    throw err;
  }
  timer.mark('checks');
  const rotation = config.log.file ? startLogRotation(config.log.file, config.log.rotate_size_mb * 2 ** 20, config.log.rotate_keep) : null;
  const log = createLogger({ level: config.log.level });
  for (const w of configWarnings(config, process.env)) log.warn({ event: 'config_warning' }, w);
  if (live) log.warn({ event: 'ibkr_live', port: config.ibkr.port }, live);
  const settings = settingsWithSources(config, layers);
  const notDefault = settings.filter((s) => s.source !== 'default');
  log.info({ settings: Object.fromEntries(notDefault.map((s) => [s.key, s.source])) }, `${notDefault.length} setting(s) not from the defaults (barkeep config show lists them all)`);
  const { startEngine } = await engineModule;
  timer.mark('engine_loaded');
  // Signals are ours from before the engine starts: "barkeep serving" is logged inside
  // startEngine, and a SIGTERM right after it must still stop the actors in order, not kill the
  // process with the default action. One that arrives during start-up is acted on once it is up.
  let onSignal = (signal: string): void => {
    pending ??= signal;
  };
  let pending: string | undefined;
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  let engine: Awaited<ReturnType<typeof startEngine>>;
  try {
    engine = await startEngine(config, { log, settings, spares, timer });
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
          rotation?.stop();
          resolve(0);
        },
        (err) => {
          log.error({ err }, 'shutdown failed');
          log.flush();
          resolve(1);
        },
      );
    };
    onSignal = shutdown;
    if (pending) shutdown(pending);
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (argv.includes('--version')) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  switch (command) {
    case 'serve':
      return serve(rest);
    case undefined:
      // Bare `barkeep` explains itself rather than starting an engine that trades.
      process.stdout.write(`${USAGE}\n`);
      return 0;
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`${version()}\n`);
      return 0;
    case 'status':
    case 'orders':
    case 'fills':
    case 'kill':
    case 'resume':
    case 'config': {
      const { clientCommand } = await import('./cli/client.ts');
      return clientCommand(command, rest, { env: process.env, out: process.stdout, err: process.stderr });
    }
    case 'check': {
      const { checkCommand } = await import('./cli/check.ts');
      return checkCommand(rest, { env: process.env, out: process.stdout });
    }
    case 'bars': {
      if (rest.includes('--help') || rest.includes('-h')) {
        const { barsCommand } = await import('./cli/bars.ts');
        return barsCommand(['--help'], { dataDir: '.', out: process.stdout, err: process.stderr });
      }
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
