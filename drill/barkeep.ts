/**
 * `barkeep serve` as a child process on loopback for the drills: started on a data directory the
 * drill owns (so it can be SIGKILLed and started again on the same data), with a config laid over
 * the defaults and a clean environment (no vendor key from the shell leaks in).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/barkeep.mjs', import.meta.url));

export interface Barkeep {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Log lines (JSON) written so far. */
  lines: string[];
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; text: string; json: any }>;
  get(path: string): Promise<{ status: number; text: string; json: any }>;
  post(path: string, body?: unknown): Promise<{ status: number; text: string; json: any }>;
  /** Resident set size of the process, bytes (from /proc). */
  rss(): number;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  dir: string;
  yaml?: string;
  env?: Record<string, string>;
  token?: string;
  timeoutMs?: number;
}

export async function startBarkeep(opts: StartOptions): Promise<Barkeep> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    BARKEEP_PORT: '0',
    BARKEEP_DATA_DIR: join(opts.dir, 'data'),
    ...(opts.token ? { BARKEEP_API_TOKEN: opts.token } : {}),
    ...opts.env,
  };
  if (opts.yaml) {
    writeFileSync(join(opts.dir, 'drill.yaml'), opts.yaml);
    env.BARKEEP_CONFIG = join(opts.dir, 'drill.yaml');
  }
  const child = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`barkeep did not serve within ${opts.timeoutMs ?? 180_000} ms: ${stderr}`));
    }, opts.timeoutMs ?? 180_000);
    child.stdout!.on('data', (d) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (lines.length < 20_000) lines.push(line);
        if (line.includes('"msg":"barkeep serving"')) {
          clearTimeout(timer);
          resolve(JSON.parse(line).url);
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`barkeep exited with ${code} before serving: ${stderr}\n${lines.slice(-5).join('\n')}`));
    });
  });
  const auth: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const request = async (method: string, path: string, body?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, { method, headers: { ...auth, ...headers }, body });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json };
  };
  return {
    url,
    pid: child.pid!,
    child,
    lines,
    request,
    get: (path) => request('GET', path),
    post: (path, body) => request('POST', path, body === undefined ? undefined : JSON.stringify(body), body === undefined ? {} : { 'content-type': 'application/json' }),
    rss() {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const m = /VmRSS:\s+(\d+) kB/.exec(status);
        return m ? Number(m[1]) * 1024 : NaN;
      } catch {
        return NaN;
      }
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const hard = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(hard);
      return code;
    },
  };
}

export async function until<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The first bar the trading loop handled: each bar after it is judged. */
export function firstLiveBar(bk: Barkeep): Promise<number> {
  return until(
    async () => {
      const s = (await bk.get('/live/status')).json;
      return s?.last_bar_time && Date.parse(s.last_bar_time);
    },
    'the first live bar',
    180_000,
  );
}

/** Waits two simulated minutes (the trader catches up with the cache), then the last bar it handled. */
export async function lastHandledBar(bk: Barkeep, speed: number): Promise<number> {
  await new Promise((res) => setTimeout(res, (2 * 60_000) / speed + 500));
  return Date.parse((await bk.get('/live/status')).json.last_bar_time);
}
