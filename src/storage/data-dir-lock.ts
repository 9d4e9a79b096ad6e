/**
 * One barkeep process per data directory.
 *
 * Two processes on one data directory would both run a trader over the same journal and send every
 * order twice. The lock is taken before any actor opens the journal, and it must vanish with the
 * process however it dies (a SIGKILL leaves no time to clean up), so that a restart after a crash
 * is never refused.
 *
 * Design decisions:
 * - On Linux the lock is a Unix socket in the abstract namespace, named after the directory's real
 *   path. The kernel refuses a second bind atomically and frees the name when the holder dies, so
 *   there is no stale lock and no race between two starts. The holder answers a connection on it
 *   with who it is (pid, URL), which is what the refusal names.
 * - Elsewhere (and as the human-readable record everywhere) `barkeep.pid` in the directory holds
 *   the holder's pid and URL. Without the abstract socket, a pid file whose process is alive means
 *   the directory is in use; a dead pid is a stale file from a crash and is taken over.
 *
 * Footgun: the abstract namespace belongs to the network namespace, so two containers sharing one
 * volume but not one network namespace do not see each other's socket. The pid file then cannot
 * help either (pid namespaces differ); run one container per data directory.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BarkeepError } from '../errors.ts';
import type { StorageErrorCode } from './errors.ts';

export const LOCK_FILE = 'barkeep.pid';

export interface LockHolder {
  pid: number;
  url: string | null;
  host: string;
  started_at: string;
}

/** The data directory is held by another live barkeep process. */
export class DataDirInUseError extends BarkeepError<Extract<StorageErrorCode, 'DATA_DIR_IN_USE'>> {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder | null,
  ) {
    const who = holder
      ? `barkeep pid ${holder.pid}${holder.url ? ` serving ${holder.url}` : ''} (since ${holder.started_at})`
      : 'another barkeep process';
    super('DATA_DIR_IN_USE', `data directory ${dataDir} is in use by ${who}; stop it first or choose another BARKEEP_DATA_DIR`);
  }
}

export interface DataDirLock {
  readonly dataDir: string;
  /** Records the URL the server listens on, so a refused second process can name it. */
  setUrl(url: string): void;
  release(): Promise<void>;
}

/** Abstract socket names are limited to 107 bytes; a hash of the real path always fits. */
function abstractName(realDir: string): string {
  return `\0barkeep-data-dir:${createHash('sha256').update(realDir).digest('hex').slice(0, 40)}`;
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' ? h : null;
  } catch {
    return null;
  }
}

/** Asks the process holding the abstract socket who it is; null when it does not answer in time. */
function askHolder(name: string, timeoutMs = 500): Promise<LockHolder | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: name });
    let buf = '';
    const done = (h: LockHolder | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(h);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.on('data', (d) => (buf += d));
    sock.on('end', () => {
      try {
        done(JSON.parse(buf) as LockHolder);
      } catch {
        done(null);
      }
    });
    sock.on('error', () => done(null));
  });
}

function listenAbstract(name: string, info: () => LockHolder): Promise<net.Server | 'in-use' | 'unsupported'> {
  return new Promise((resolve) => {
    const server = net.createServer((c) => c.end(JSON.stringify(info())));
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE' ? 'in-use' : 'unsupported'));
    server.listen({ path: name }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/**
 * Takes the data directory for this process, creating the directory when missing.
 * Rejects with DataDirInUseError when a live barkeep holds it.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const dir = path.resolve(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  const real = fs.realpathSync(dir);
  const file = path.join(real, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, url: null, host: os.hostname(), started_at: new Date().toISOString() };

  let server: net.Server | null = null;
  if (process.platform === 'linux') {
    const name = abstractName(real);
    const got = await listenAbstract(name, () => me);
    if (got === 'in-use') throw new DataDirInUseError(dir, (await askHolder(name)) ?? readHolder(file));
    if (got !== 'unsupported') server = got;
  }
  if (!server) {
    const held = readHolder(file);
    if (held && held.pid !== process.pid && held.host === me.host && pidAlive(held.pid)) throw new DataDirInUseError(dir, held);
  }
  const write = () => {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(me)}\n`);
    fs.renameSync(tmp, file);
  };
  write();

  let released: Promise<void> | undefined;
  return {
    dataDir: dir,
    setUrl(url) {
      me.url = url;
      write();
    },
    release() {
      released ??= (async () => {
        if (readHolder(file)?.pid === process.pid) fs.rmSync(file, { force: true });
        if (server) await new Promise<void>((r) => server!.close(() => r()));
      })();
      return released;
    },
  };
}
