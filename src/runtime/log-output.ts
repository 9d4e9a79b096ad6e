/**
 * Where log lines go, in every thread alike: JSON lines on stdout, or pino-pretty's coloured lines
 * when the main thread found a terminal (log.format), and also a file when `log.file` is set.
 *
 * The main thread decides and hands the choice to the actors' threads through two environment
 * variables (BARKEEP_LOG_FORMAT, BARKEEP_LOG_FILE) set before any worker starts. Every thread
 * appends to the file (O_APPEND: whole lines); only the main thread rotates it, by size, then tells
 * every thread to reopen it over a BroadcastChannel.
 */
import { closeSync, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import { createRequire } from 'node:module';
import pino from 'pino';

// pino-pretty is loaded only when asked for: JSON output (services, tests) does not pay for it.
const require = createRequire(import.meta.url);

const CHANNEL = 'barkeep-log-reopen';

export interface LogOutputOptions {
  format: 'json' | 'pretty';
  file: string | null;
}

/** Called by the main thread before the engine starts: every logger created after follows it. */
export function setLogOutput(o: LogOutputOptions): void {
  process.env.BARKEEP_LOG_FORMAT = o.format;
  if (o.file) process.env.BARKEEP_LOG_FILE = o.file;
  else delete process.env.BARKEEP_LOG_FILE;
}

/** `auto` is pretty on a terminal, JSON otherwise (pipes, files, systemd, docker logs). */
export function resolveFormat(format: 'auto' | 'json' | 'pretty', isTty: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTty ? 'pretty' : 'json') : format;
}

export function logDestination(): pino.DestinationStream {
  const format = process.env.BARKEEP_LOG_FORMAT === 'pretty' ? 'pretty' : 'json';
  const console: pino.DestinationStream =
    format === 'pretty'
      ? (require('pino-pretty') as typeof import('pino-pretty'))({ colorize: true, destination: 1, sync: false, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : pino.destination({ dest: 1, sync: false });
  const file = process.env.BARKEEP_LOG_FILE;
  if (!file) return console;
  const toFile = pino.destination({ dest: file, append: true, mkdir: true, sync: false });
  const reopen = new BroadcastChannel(CHANNEL);
  reopen.onmessage = () => toFile.reopen();
  (reopen as unknown as { unref?: () => void }).unref?.();
  return pino.multistream([
    { level: 'trace', stream: console },
    { level: 'trace', stream: toFile },
  ]);
}

/** Main thread: rotates `file` past `maxBytes`, keeping `keep` old files (file.1 newest). */
export function startLogRotation(file: string, maxBytes: number, keep: number, everyMs = 2000): { stop(): void; rotateNow(): void } {
  if (!isMainThread) throw new Error('log rotation runs on the main thread');
  const channel = new BroadcastChannel(CHANNEL);
  const rotateNow = () => {
    try {
      if (!existsSync(file) || statSync(file).size < maxBytes) return;
      rmSync(`${file}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      renameSync(file, `${file}.1`);
      closeSync(openSync(file, 'a'));
      channel.postMessage('reopen');
    } catch {
      /* a failed rotation leaves the file growing; the next tick tries again */
    }
  };
  const timer = setInterval(rotateNow, everyMs);
  timer.unref();
  return {
    rotateNow,
    stop() {
      clearInterval(timer);
      channel.close();
    },
  };
}
