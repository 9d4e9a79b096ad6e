/**
 * Waits for TWS's answer about one order (a placement's acknowledgement, a cancel's outcome): each
 * wait decides, from the signals about its order, whether it is done, failed or still waiting, and
 * fails BROKER_UNAVAILABLE after `timeoutMs` of clock time.
 */
import type { Clock, TimerHandle } from '../../market/clock.ts';
import type { IbOrderErrorKind, IbOrderPhase } from '../../sources/ibkr/order-status.ts';
import { BrokerError } from './broker.ts';

/** What TWS said about an order, normalised. */
export type OrderSignal =
  | { kind: 'status'; phase: IbOrderPhase; status: string }
  | { kind: 'error'; error: IbOrderErrorKind; code: number; message: string }
  | { kind: 'execution' }
  | { kind: 'gone'; reason: string };

interface Wait {
  orderId: number;
  decide(s: OrderSignal): 'done' | Error | undefined;
  resolve(): void;
  reject(err: Error): void;
  timer: TimerHandle;
}

export function unavailable(message: string, cause?: unknown): BrokerError {
  return new BrokerError('BROKER_UNAVAILABLE', message, cause === undefined ? undefined : { cause });
}

export class OrderWaits {
  private readonly waits = new Set<Wait>();

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves when `decide` says 'done', rejects with the Error it returns or after the timeout. */
  waitFor(orderId: number, what: string, decide: Wait['decide']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wait: Wait = {
        orderId,
        decide,
        resolve,
        reject,
        timer: this.clock.setTimeout(() => this.settle(wait, unavailable(`no answer from TWS about ${what} within ${this.timeoutMs} ms`)), this.timeoutMs),
      };
      this.waits.add(wait);
    });
  }

  /** Hands `s` to the waits on `orderId` (every wait when undefined). */
  signal(orderId: number | undefined, s: OrderSignal): void {
    for (const w of [...this.waits]) {
      if (orderId !== undefined && w.orderId !== orderId) continue;
      const outcome = w.decide(s);
      if (outcome !== undefined) this.settle(w, outcome);
    }
  }

  private settle(w: Wait, outcome: 'done' | Error): void {
    if (!this.waits.delete(w)) return;
    w.timer.cancel();
    if (outcome === 'done') w.resolve();
    else w.reject(outcome);
  }
}
