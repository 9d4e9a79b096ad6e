/** Runs `barkeep serve` as a child process on a free port, as a user would, and talks HTTP to it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.ts';

/** The command line the server runs with (after `node`, from the repository): Dockerfile and systemd use the same. */
export const SERVE_ARGS = ['bin/barkeep.mjs', 'serve'] as const;
const BIN = fileURLToPath(new URL(`../../${SERVE_ARGS[0]}`, import.meta.url));

export interface Served {
  url: string;
  child: ChildProcess;
  dir: string;
  lines: string[];
  get(path: string): Promise<{ status: number; body: any }>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Sends a signal and resolves with the exit code and how long the exit took (ms). */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface ServeOptions {
  env?: Record<string, string>;
  /** YAML laid over the defaults (written to a temp file named by BARKEEP_CONFIG). */
  yaml?: string;
  timeoutMs?: number;
}

/** A clean environment: no vendor keys from the developer's shell leak into a test. */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'NODE_OPTIONS'];
  return Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]!]));
}

export function runCli(args: string[], opts: ServeOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-cli-'));
  const env: Record<string, string> = { ...baseEnv(), BARKEEP_DATA_DIR: join(dir, 'data'), ...opts.env };
  if (opts.yaml) {
    writeFileSync(join(dir, 'local.yaml'), opts.yaml);
    env.BARKEEP_CONFIG = join(dir, 'local.yaml');
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

export async function serve(opts: ServeOptions = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-serve-'));
  const env: Record<string, string> = {
    ...baseEnv(),
    BARKEEP_PORT: '0',
    BARKEEP_DATA_DIR: join(dir, 'data'),
    ...opts.env,
  };
  if (opts.yaml) {
    writeFileSync(join(dir, 'local.yaml'), opts.yaml);
    env.BARKEEP_CONFIG = join(dir, 'local.yaml');
  }
  const child = spawn(process.execPath, [BIN, ...SERVE_ARGS.slice(1)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // A child left running would keep the test process (and the suite) waiting on its pipes.
      child.kill('SIGKILL');
      reject(new Error(`barkeep did not start in time; stderr: ${stderr}\n${lines.slice(-5).join('\n')}`));
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        try {
          const rec = JSON.parse(line);
          if (rec.msg === 'barkeep serving') {
            clearTimeout(timer);
            resolve(rec.url);
          }
        } catch {
          /* not JSON */
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`barkeep exited with ${code} before serving; stderr: ${stderr}\n${lines.slice(-5).join('\n')}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* text */
    }
    return { status: res.status, body: parsed as any };
  };
  let stopped: Promise<{ code: number | null; ms: number }> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    stopped ??= (async () => {
      const t0 = Date.now();
      child.kill(signal);
      const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(hard);
      return { code, ms: Date.now() - t0 };
    })();
    return stopped;
  };
  return {
    url,
    child,
    dir,
    lines,
    get: (p) => call('GET', p),
    post: (p, b, h) => call('POST', p, b, h),
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `waitFor` for a served engine: polls every 100 ms, a 20 s hang guard. */
export function until<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  return waitFor(fn, { what, timeoutMs, intervalMs: 100 });
}
