/**
 * Drives a ManualClock while a client talks to a fake over real HTTP: time moves only while the
 * client sleeps on the clock (a limiter wait or a backoff) and no request is at the fake, so a
 * request's start and its arrival carry the same clock time and the fake's window counts exactly
 * what the client's limiter allowed. A minute of waiting costs a few hundred event-loop turns.
 */
import type { ManualClock } from '../../../src/market/clock.ts';

export async function driveClock<T>(clock: ManualClock, fakes: Array<{ readonly inFlight: number }>, work: Promise<T>, stepMs = 250): Promise<T> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  // The work's own rejection is re-thrown by `await settled` below.
  settled.catch(() => {});
  // A request on its way to the fake is invisible to it for a few turns: wait for a quiet spell.
  let quiet = 0;
  while (!done) {
    await new Promise((resolve) => setImmediate(resolve));
    if (done) break;
    quiet = clock.pending() > 0 && fakes.every((f) => f.inFlight === 0) ? quiet + 1 : 0;
    if (quiet >= 3) {
      clock.advance(stepMs);
      quiet = 0;
    }
  }
  return settled;
}
