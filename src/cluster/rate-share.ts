/**
 * A vendor's rate limit shared by the cluster: every node that uses one API key draws from one
 * budget, so three nodes on a 5-per-minute key make 5 requests a minute together, not 15.
 *
 * The budget is a sliding log in the JetStream KV bucket `barkeep_rates`: one key per vendor and
 * API key (a hash of the key, never the key), holding the start times of the requests still inside
 * the window. A node takes a slot with a compare-and-set on the revision it read; when another node
 * took one in between, it reads again. When the window is full it waits until the oldest start
 * leaves it. Each node's own limiter still runs first (src/sources/rate-limiter.ts), so a node alone
 * behaves as before.
 *
 * Footguns:
 * - The stamps are compared across nodes, so the nodes' clocks must agree (real time, NTP); a
 *   guard (250 ms, as the local limiter's) absorbs small skew and network jitter.
 * - While NATS is unreachable a request waits (retrying) up to `unavailableMs`, then fails as any
 *   vendor error does: a node cut off from the cluster must not spend the others' budget.
 */
import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { Clock } from '../market/clock.ts';
import type { SharedRateGate } from '../sources/rate-limiter.ts';
import { isWrongLastSequence } from './order-fence.ts';
import { RATES_BUCKET } from './subjects.ts';

export interface ClusterRateGateOptions {
  /** `massive` or `alpaca`: part of the budget's name. */
  vendor: string;
  /** The API key; only its hash leaves this process. */
  apiKey: string;
  limit: number;
  windowMs?: number;
  guardMs?: number;
  clock: Clock;
  /** How long a request waits for an unreachable NATS before it fails; default 10 s. */
  unavailableMs?: number;
}

export function budgetKey(vendor: string, apiKey: string): string {
  return `${vendor}_${createHash('sha256').update(apiKey).digest('hex').slice(0, 16)}`;
}

export async function openRatesBucket(js: JetStreamClient): Promise<KV> {
  // Entries of keys no node uses any more go away by themselves.
  return new Kvm(js).create(RATES_BUCKET, { history: 1, ttl: 10 * 60_000 });
}

export class ClusterRateGate implements SharedRateGate {
  readonly key: string;
  /** Slots lost to another node's write and taken again. */
  conflicts = 0;
  private readonly holdMs: number;

  constructor(
    private readonly kv: KV,
    private readonly opts: ClusterRateGateOptions,
  ) {
    this.key = budgetKey(opts.vendor, opts.apiKey);
    this.holdMs = (opts.windowMs ?? 60_000) + (opts.guardMs ?? 250);
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    const { clock, limit } = this.opts;
    let unavailableSince: number | undefined;
    for (;;) {
      signal?.throwIfAborted();
      let wait: number;
      try {
        const e = await this.kv.get(this.key);
        const now = clock.now();
        const stamps = (e?.operation === 'PUT' ? e.json<number[]>() : []).filter((t) => t + this.holdMs > now);
        unavailableSince = undefined;
        if (stamps.length < limit) {
          stamps.push(now);
          try {
            if (e) await this.kv.update(this.key, JSON.stringify(stamps), e.revision);
            else await this.kv.create(this.key, JSON.stringify(stamps));
            return;
          } catch (err) {
            if (!isWrongLastSequence(err) && !/key exists/i.test((err as Error).message)) throw err;
            this.conflicts++;
            continue;
          }
        }
        wait = stamps[stamps.length - limit] + this.holdMs - now;
      } catch (err) {
        const now = clock.now();
        unavailableSince ??= now;
        if (now - unavailableSince >= (this.opts.unavailableMs ?? 10_000)) {
          throw new Error(`cluster rate budget ${this.key} unavailable: ${(err as Error).message}`, { cause: err });
        }
        wait = 250;
      }
      await sleep(clock, Math.max(1, wait), signal);
    }
  }
}

function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      t.cancel();
      reject(signal!.reason ?? new Error('aborted'));
    };
    const t = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
