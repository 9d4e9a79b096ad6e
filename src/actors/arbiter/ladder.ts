/**
 * FeedLadder: for one symbol, which rung of the feed ladder serves, and why.
 *
 * Rungs, best first: ibkr-realtime, preload, cache, ibkr-historical. Each rung is `up` (it can serve
 * now) or down with a reason. The rules:
 * - The serving rung going down hands over at once to the best rung that is up.
 * - A better rung that comes up does not take over at once: it must first deliver
 *   `climbBackAfterBars` fresh bars while waiting (no flapping on a rung that blinks).
 * - `preload` is the warm-up history: it serves from the start until the first live bar arrives
 *   from any rung, then it is done (a buffer has no new bars to give). It comes up only when a
 *   warm-up was handed on, so it takes over at once from a rung below it (it has nothing to prove),
 *   never from one above it.
 * - With no rung up, nothing serves (rung null) until one comes up; then it serves at once.
 * - Rungs that are not configured never come up and keep the reason 'not configured'.
 * - `freshBar` runs once per bar on the arbiter's hot path: it allocates nothing unless the
 *   serving rung changes (the switch's reason is built only then).
 */
import type { Rung } from './protocol.ts';

export const LADDER: readonly Rung[] = ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'];

interface RungState {
  up: boolean;
  reason: string;
  /** Fresh bars delivered since the rung last came up (counts toward climbing back). */
  fresh: number;
}

export interface Switch {
  from: Rung | null;
  to: Rung | null;
  reason: string;
  at: number;
}

export class FeedLadder {
  private readonly rungs = new Map<Rung, RungState>();
  /** The serving rung's and the preload's states, for freshBar's common case without lookups. */
  private servingState: RungState | null = null;
  private readonly preload: RungState;
  serving: Rung | null = null;
  since: number;
  reason = 'starting';

  constructor(
    readonly symbol: string,
    enabled: readonly Rung[],
    private readonly climbBackAfterBars: number,
    now: number,
  ) {
    this.since = now;
    for (const rung of LADDER) {
      this.rungs.set(rung, {
        up: false,
        reason: enabled.includes(rung) ? 'no bars yet' : 'not configured',
        fresh: 0,
      });
    }
    this.enabled = new Set(enabled);
    this.preload = this.rungs.get('preload')!;
  }

  private readonly enabled: Set<Rung>;

  isUp(rung: Rung): boolean {
    return this.rungs.get(rung)!.up;
  }

  /** Why each rung better than the serving one is not serving. */
  unavailable(): Partial<Record<Rung, string>> {
    const out: Partial<Record<Rung, string>> = {};
    for (const rung of LADDER) {
      if (rung === this.serving) break;
      const st = this.rungs.get(rung)!;
      out[rung] = st.up ? `up, ${st.fresh}/${this.climbBackAfterBars} fresh bars before climbing back` : st.reason;
    }
    return out;
  }

  /** The rung can serve (again). It serves at once only if nothing better serves. */
  markUp(rung: Rung, now: number, reason = 'available'): Switch | null {
    if (!this.enabled.has(rung)) return null;
    const st = this.rungs.get(rung)!;
    if (!st.up) {
      st.up = true;
      st.fresh = 0;
      st.reason = reason;
    }
    return this.evaluate(now, reason);
  }

  /** The rung failed or went stale; if it was serving, the next one up takes over. */
  markDown(rung: Rung, now: number, reason: string): Switch | null {
    if (!this.enabled.has(rung)) return null;
    const st = this.rungs.get(rung)!;
    st.reason = reason;
    if (!st.up) return null;
    st.up = false;
    st.fresh = 0;
    return this.evaluate(now, `${rung} down: ${reason}`);
  }

  /** A rung delivered a fresh bar. Ends the preload, and counts toward climbing back. */
  freshBar(rung: Rung, now: number): Switch | null {
    // The common case, the serving rung's next bar: nothing else changed, so nothing can switch.
    // (A serving rung is an enabled one.) Touches this object and two states, nothing else.
    const serving = this.servingState;
    if (rung === this.serving && serving !== null && serving.up && (rung === 'preload' || !this.preload.up)) {
      serving.fresh++;
      return null;
    }
    if (!this.enabled.has(rung)) return null;
    const st = this.rungs.get(rung)!;
    if (!st.up) {
      st.up = true;
      st.fresh = 0;
      st.reason = 'delivering';
    }
    st.fresh++;
    if (rung !== 'preload' && this.rungs.get('preload')!.up) {
      const p = this.rungs.get('preload')!;
      p.up = false;
      p.reason = 'warm-up delivered; live bars flowing';
    }
    return this.evaluate(now, null, rung);
  }

  /** `why` null: `cause` delivered a fresh bar (the reason is built only if the serving rung changes). */
  private evaluate(now: number, why: string | null, cause?: Rung): Switch | null {
    let target: Rung | null = null;
    const current = this.serving;
    const currentUp = current !== null && this.rungs.get(current)!.up;
    for (const rung of LADDER) {
      const st = this.rungs.get(rung)!;
      if (!st.up) continue;
      if (rung === current) {
        target = rung;
        break;
      }
      // A better rung must prove itself before it displaces a serving one; the preload (a warm-up
      // just handed on) has nothing to prove.
      const better = current !== null && currentUp && LADDER.indexOf(rung) < LADDER.indexOf(current);
      if (better && rung !== 'preload' && st.fresh < this.climbBackAfterBars) continue;
      target = rung;
      break;
    }
    if (target === current) return null;
    if (why === null) {
      const climbing = target === cause && currentUp && current !== null;
      why = climbing ? `${cause} delivered ${this.climbBackAfterBars} fresh bars: climbing back` : `${cause} delivering fresh bars`;
    }
    const sw: Switch = { from: current, to: target, reason: target === null ? `no rung can serve (${why})` : why, at: now };
    this.serving = target;
    this.servingState = target === null ? null : this.rungs.get(target)!;
    this.since = now;
    this.reason = sw.reason;
    return sw;
  }
}
