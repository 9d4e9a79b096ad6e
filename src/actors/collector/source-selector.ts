/**
 * SourceSelector: which of the configured sources the collector collects from, and when it moves.
 * Pure state, like the arbiter's ladder.ts: the collector tells it how each pass went and asks it
 * whether to fail over or to probe the preferred source again.
 *
 * The rules: sources are in preference order (Massive, Alpaca, sim). A pass with at least one
 * symbol collected resets the failure count. A source that refused the credentials fails over at
 * once; any other failure fails over after `failoverAfterFailures` failed passes in a row. The last
 * source has nothing to fail over to. While failed over, the preferred source is probed every
 * `retryPreferredAfterMs`, and collection moves back to it when it answers.
 */
import type { SourceError } from '../../sources/types.ts';

/** How one pass over the symbols with one source went. */
export interface Pass {
  ok: number;
  refused?: SourceError;
  lastError?: unknown;
  aborted: boolean;
}

export interface SwitchOf {
  from: number;
  to: number;
  reason: string;
}

export class SourceSelector {
  active = 0;
  failures = 0;
  failovers = 0;
  failoverReason: string | null = null;
  private lastPreferredProbe = 0;

  constructor(
    private readonly names: readonly string[],
    private readonly failoverAfterFailures: number,
    private readonly retryPreferredAfterMs: number,
  ) {}

  /** Takes back the active source a checkpoint recorded. */
  restore(active: number): void {
    this.active = Math.min(active, this.names.length - 1);
    if (this.active > 0) this.failoverReason = 'resumed on the fallback source after a restart';
  }

  /** Records a pass; returns the switch to make now (collect again from the next source), or null. */
  afterPass(pass: Pass, now: number): SwitchOf | null {
    if (pass.aborted) return null;
    if (pass.ok > 0) {
      this.failures = 0;
      return null;
    }
    this.failures++;
    const name = this.names[this.active];
    const refused = pass.refused;
    const why = refused
      ? `${name} refused the credentials (${refused.code}${refused.status ? ` ${refused.status}` : ''}: ${refused.vendorMessage ?? refused.message})`
      : `${name} failed ${this.failures} cycle(s) in a row (${(pass.lastError as Error)?.message ?? 'unknown error'})`;
    if (!(refused || this.failures >= this.failoverAfterFailures) || this.active >= this.names.length - 1) return null;
    return this.switchTo(this.active + 1, why, now);
  }

  /** While failed over: whether the preferred source is due for a probe now (and marks it probed). */
  probeDue(now: number): boolean {
    if (this.active === 0) return false;
    if (now - this.lastPreferredProbe < this.retryPreferredAfterMs) return false;
    this.lastPreferredProbe = now;
    return true;
  }

  switchTo(index: number, reason: string, now: number): SwitchOf {
    const from = this.active;
    this.active = index;
    this.failures = 0;
    this.failovers++;
    this.failoverReason = index === 0 ? null : reason;
    this.lastPreferredProbe = now;
    return { from, to: index, reason };
  }
}
