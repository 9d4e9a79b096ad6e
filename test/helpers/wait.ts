/**
 * The one polling helper of the test suite: `waitFor(check, { what })` resolves with the first truthy value of
 * `check`, polling until then. `check` may be async and may act
 * (push a bar, advance a clock). The deadline only stops a hang: it is real time, never a performance
 * threshold, and the failure names what never happened.
 */

export const WAIT_GUARD_MS = 10_000;

export interface WaitOptions {
  /** What is awaited, for the failure message ("never happened: <what>"). */
  what: string | (() => string);
  /** Real ms before the wait fails as a hang (default 10 s). */
  timeoutMs?: number;
  /** Real ms between polls (default 5); 0 polls on every event-loop turn (setImmediate), the clock untouched. */
  intervalMs?: number;
}

type Pending = undefined | null | false | 0 | '';

export async function waitFor<T>(check: () => T | Pending | Promise<T | Pending>, opts: WaitOptions | string): Promise<T> {
  const { what, timeoutMs = WAIT_GUARD_MS, intervalMs = 5 } = typeof opts === 'string' ? { what: opts } : opts;
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`never happened: ${typeof what === 'function' ? what() : what}`);
    await (intervalMs > 0 ? new Promise((r) => setTimeout(r, intervalMs)) : new Promise((r) => setImmediate(r)));
  }
}

/** A clock that `advanceUntil` can step: ManualClock, or the simulator's. */
export interface SteppableClock {
  now(): number;
  advance(ms: number): void;
}

/**
 * Moves `clock` forward in `stepMs` steps until `cond` holds, stepping only after a few quiet
 * event-loop turns in which `busy` (messages in transit) said no, so whatever a step set off has
 * arrived before the next. Fails after `maxMs` of clock time, or after 20 real seconds (a hang).
 */
export async function advanceUntil(clock: SteppableClock, cond: () => boolean, what: string, opts: { busy?: () => boolean; stepMs?: number; maxMs?: number } = {}): Promise<void> {
  const { busy = () => false, stepMs = 250, maxMs = 3_600_000 } = opts;
  const limit = clock.now() + maxMs;
  const end = Date.now() + 20_000;
  let quiet = 0;
  while (!cond()) {
    if (clock.now() >= limit) throw new Error(`not within ${maxMs} ms of clock time: ${what}`);
    if (Date.now() > end) throw new Error(`hung waiting for: ${what}`);
    await new Promise((r) => setImmediate(r));
    quiet = busy() ? 0 : quiet + 1;
    if (quiet >= 3) {
      clock.advance(stepMs);
      quiet = 0;
    }
  }
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
