/**
 * The kill switch's persistence: engaged, it is written to the checkpoints (when given) so a
 * restarted trader stays stopped until an operator resumes it. The risk engine enforces it.
 */
import type { CheckpointStore } from '../../storage/types.ts';
import type { TraderLog } from './orders.ts';
import type { RiskEngine, RiskOrder } from './risk.ts';

export class KillSwitch {
  constructor(
    private readonly risk: RiskEngine,
    private readonly log: TraderLog,
    private readonly checkpoints: CheckpointStore | undefined,
    private readonly key: string,
  ) {}

  /** Engages it again if it was engaged before the restart. */
  restore(): void {
    const kill = this.checkpoints?.get<{ at: number }>(this.key);
    if (kill) {
      this.risk.kill(kill.at);
      this.log.warn({ killedAt: kill.at }, 'kill switch was engaged before the restart; it stays engaged until resumed');
    }
  }

  async engage(now: number, flatten: boolean): Promise<void> {
    this.risk.kill(now);
    if (this.checkpoints) await this.checkpoints.put(this.key, { at: now });
    this.log.warn({ flatten }, 'kill switch engaged');
  }

  async release(): Promise<void> {
    this.risk.resume();
    if (this.checkpoints) await this.checkpoints.delete(this.key);
    this.log.info({}, 'kill switch released');
  }
}

/** The market orders that close every position (signed shares by symbol). */
export function flattenOrders(positions: Iterable<[string, number]>): RiskOrder[] {
  return [...positions].map(([symbol, qty]) => ({ symbol, side: qty > 0 ? 'sell' : 'buy', qty: Math.abs(qty), type: 'market', flatten: true }));
}
