/**
 * Waiting helpers for tests that drive the TWS simulator. The timeout is a guard against a hang,
 * never a performance threshold.
 */

export const WAIT_GUARD_MS = 10_000;

/** Resolves when `check` returns a value other than undefined/false (polled every 5 ms). */
export function until<T>(what: string, check: () => T | undefined | false, guardMs = WAIT_GUARD_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const started = Date.now();
    const poll = () => {
      let v: T | undefined | false;
      try {
        v = check();
      } catch (err) {
        reject(err);
        return;
      }
      if (v !== undefined && v !== false) {
        resolve(v);
        return;
      }
      if (Date.now() - started > guardMs) {
        reject(new Error(`timed out waiting for ${what}`));
        return;
      }
      setTimeout(poll, 5);
    };
    poll();
  });
}

/** Records every emission of `event` on `emitter`. */
interface Listenable {
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

export function record<A extends unknown[]>(emitter: Listenable, event: string): { seen: A[]; stop(): void } {
  const seen: A[] = [];
  const h = (...args: unknown[]) => void seen.push(args as A);
  emitter.on(event, h);
  return { seen, stop: () => void emitter.off(event, h) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
