/**
 * Calls to an actor's thread that fail rather than hang: on the supervisor's injected clock, a call
 * that gets no answer in time fails, and every call pending when the thread exits fails at once.
 */
import type { Clock } from '../market/clock.ts';
import { RuntimeError } from './protocol.ts';

/** The calls in flight to one actor's thread: failed all together when it exits. */
export class PendingCalls {
  private readonly fails = new Set<(err: Error) => void>();

  /** Runs `fn`; rejects if it takes longer than `timeoutMs` or the thread exits first. */
  run<T>(clock: Clock, actor: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        timer.cancel();
        this.fails.delete(fail);
        reject(err);
      };
      const timer = clock.setTimeout(() => fail(new RuntimeError('ACTOR_UNAVAILABLE', `${actor} did not answer in ${timeoutMs} ms`)), timeoutMs);
      this.fails.add(fail);
      fn().then(
        (v) => {
          timer.cancel();
          this.fails.delete(fail);
          resolve(v);
        },
        (err) => fail(err),
      );
    });
  }

  /** Fails every call in flight with `err`. */
  failAll(err: Error): void {
    const fails = [...this.fails];
    this.fails.clear();
    for (const f of fails) f(err);
  }
}

/** `p`, or a rejection with `message` once `ms` of the clock's time have passed. */
export function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = clock.setTimeout(() => reject(new Error(message)), ms);
    p.then(
      (v) => {
        t.cancel();
        resolve(v);
      },
      (e) => {
        t.cancel();
        reject(e);
      },
    );
  });
}
