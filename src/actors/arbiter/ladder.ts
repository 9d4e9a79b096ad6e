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
 * - The state a bar touches (which rung serves, which are up, their fresh counts) lives in the
 *   arbiter's FeedTable record for the symbol (feed-table.ts), so the hot path's common case
 *   (`countFreshIfServing`) reads one record and never this object; the reasons, `since` and the
 *   switch logic stay here. `freshBar` allocates nothing unless the serving rung changes.
 */
import { ENABLED_SHIFT, FeedTable, FLAGS, FRESH, I32_PER_SLOT, NONE, PRELOAD, SERVING_MASK, SERVING_SHIFT, countFreshIfServing, servingOf } from './feed-table.ts';
import type { Rung } from './protocol.ts';

export const LADDER: readonly Rung[] = ['ibkr-realtime', 'preload', 'cache', 'ibkr-historical'];

/** A rung's code: its index in LADDER. */
export function rungCode(rung: Rung): number {
  return rung === 'ibkr-realtime' ? 0 : rung === 'preload' ? 1 : rung === 'cache' ? 2 : 3;
}

export interface Switch {
  from: Rung | null;
  to: Rung | null;
  reason: string;
  at: number;
}

export class FeedLadder {
  /** Why each rung is down (or how it came up), LADDER order. */
  private readonly reasons: string[];
  /** Int32 index of this symbol's record in the table. */
  private readonly at: number;
  private readonly i32: Int32Array;
  since: number;
  reason = 'starting';

  /** `table`/`slot`: the arbiter's table record that holds the hot state (a table of its own if none). */
  constructor(
    readonly symbol: string,
    enabled: readonly Rung[],
    private readonly climbBackAfterBars: number,
    now: number,
    private readonly table: FeedTable = new FeedTable(1),
    private readonly slot = 0,
  ) {
    this.since = now;
    this.i32 = table.i32;
    this.at = slot * I32_PER_SLOT;
    let flags = this.i32[this.at + FLAGS] & ~SERVING_MASK & ~0xff;
    flags |= NONE << SERVING_SHIFT;
    for (const rung of enabled) flags |= 1 << (rungCode(rung) + ENABLED_SHIFT);
    this.i32[this.at + FLAGS] = flags;
    for (let r = 0; r < LADDER.length; r++) this.i32[this.at + FRESH + r] = 0;
    this.reasons = LADDER.map((rung) => (enabled.includes(rung) ? 'no bars yet' : 'not configured'));
  }

  get serving(): Rung | null {
    const code = servingOf(this.i32[this.at + FLAGS]);
    return code === NONE ? null : LADDER[code];
  }

  private flags(): number {
    return this.i32[this.at + FLAGS];
  }

  private up(code: number): boolean {
    return (this.flags() & (1 << code)) !== 0;
  }

  private setUp(code: number, up: boolean): void {
    const f = this.flags();
    this.i32[this.at + FLAGS] = up ? f | (1 << code) : f & ~(1 << code);
  }

  private enabledCode(code: number): boolean {
    return (this.flags() & (1 << (code + ENABLED_SHIFT))) !== 0;
  }

  private fresh(code: number): number {
    return this.i32[this.at + FRESH + code];
  }

  isUp(rung: Rung): boolean {
    return this.up(rungCode(rung));
  }

  /** Why each rung better than the serving one is not serving. */
  unavailable(): Partial<Record<Rung, string>> {
    const out: Partial<Record<Rung, string>> = {};
    const serving = this.serving;
    for (let code = 0; code < LADDER.length; code++) {
      const rung = LADDER[code];
      if (rung === serving) break;
      out[rung] = this.up(code) ? `up, ${this.fresh(code)}/${this.climbBackAfterBars} fresh bars before climbing back` : this.reasons[code];
    }
    return out;
  }

  /** The rung can serve (again). It serves at once only if nothing better serves. */
  markUp(rung: Rung, now: number, reason = 'available'): Switch | null {
    const code = rungCode(rung);
    if (!this.enabledCode(code)) return null;
    if (!this.up(code)) this.comeUp(code, reason);
    return this.evaluate(now, reason);
  }

  /** The rung failed or went stale; if it was serving, the next one up takes over. */
  markDown(rung: Rung, now: number, reason: string): Switch | null {
    const code = rungCode(rung);
    if (!this.enabledCode(code)) return null;
    this.reasons[code] = reason;
    if (!this.up(code)) return null;
    this.setUp(code, false);
    this.i32[this.at + FRESH + code] = 0;
    return this.evaluate(now, `${rung} down: ${reason}`);
  }

  /** A rung delivered a fresh bar. Ends the preload, and counts toward climbing back. */
  freshBar(rung: Rung, now: number): Switch | null {
    const code = rungCode(rung);
    // The common case, the serving rung's next bar: nothing else changed, so nothing can switch.
    if (countFreshIfServing(this.table, this.slot, code)) return null;
    if (!this.enabledCode(code)) return null;
    if (!this.up(code)) this.comeUp(code, 'delivering');
    this.i32[this.at + FRESH + code]++;
    if (code !== PRELOAD && this.up(PRELOAD)) {
      this.setUp(PRELOAD, false);
      this.reasons[PRELOAD] = 'warm-up delivered; live bars flowing';
    }
    return this.evaluate(now, null, rung);
  }

  private comeUp(code: number, reason: string): void {
    this.setUp(code, true);
    this.i32[this.at + FRESH + code] = 0;
    this.reasons[code] = reason;
  }

  /** `why` null: `cause` delivered a fresh bar (the reason is built only if the serving rung changes). */
  private evaluate(now: number, why: string | null, cause?: Rung): Switch | null {
    let target = NONE;
    const current = servingOf(this.flags());
    const currentUp = current !== NONE && this.up(current);
    for (let code = 0; code < LADDER.length; code++) {
      if (!this.up(code)) continue;
      if (code === current) {
        target = code;
        break;
      }
      // A better rung must prove itself before it displaces a serving one; the preload (a warm-up
      // just handed on) has nothing to prove.
      const better = currentUp && code < current;
      if (better && code !== PRELOAD && this.fresh(code) < this.climbBackAfterBars) continue;
      target = code;
      break;
    }
    if (target === current) return null;
    const from = current === NONE ? null : LADDER[current];
    const to = target === NONE ? null : LADDER[target];
    if (why === null) {
      const climbing = to === cause && currentUp;
      why = climbing ? `${cause} delivered ${this.climbBackAfterBars} fresh bars: climbing back` : `${cause} delivering fresh bars`;
    }
    const sw: Switch = { from, to, reason: to === null ? `no rung can serve (${why})` : why, at: now };
    this.i32[this.at + FLAGS] = (this.flags() & ~SERVING_MASK) | (target << SERVING_SHIFT);
    this.since = now;
    this.reason = sw.reason;
    return sw;
  }
}
