/**
 * A base for test and bench wrappers around a replica's bar store: `put` and `putMany` are
 * `putManyCommitted` waited on to its flush, as the real store's are, so a wrapper only says what it
 * does at the commit and at the flush.
 */
import type { Bar } from '../../src/market/bar.ts';
import type { ReplicaStore } from '../../src/cluster/bar-replication.ts';
import type { WriteResult } from '../../src/storage/types.ts';

export abstract class CommittedStore implements ReplicaStore {
  abstract putManyCommitted(bars: readonly Bar[]): Promise<{ result: WriteResult; flushed: Promise<void> }>;
  put(b: Bar): Promise<WriteResult> {
    return this.putMany([b]);
  }
  async putMany(bars: readonly Bar[]): Promise<WriteResult> {
    const { result, flushed } = await this.putManyCommitted(bars);
    await flushed;
    return result;
  }
}
