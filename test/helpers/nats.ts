/**
 * A real nats-server for the cluster tests: on a loopback port, with a temporary store directory,
 * started and stopped by the test. .ci/run installs Debian's nats-server when it is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NatsServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM, or SIGKILL with `hard`), keeping its store. */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startNats(opts: { jetstream?: boolean } = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'barkeep-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const args = ['-a', '127.0.0.1', '-p', String(port), ...(opts.jetstream === false ? [] : ['-js', '-sd', dir])];
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const c = spawn('nats-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      let err = '';
      const timer = setTimeout(() => reject(new Error(`nats-server did not become ready: ${err}`)), 15_000);
      c.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`cannot run nats-server (apt-get install -y nats-server): ${e.message}`));
      });
      c.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}: ${err}`));
      });
    });
  const stop = async (hard = false) => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async [Symbol.asyncDispose]() {
      await stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
