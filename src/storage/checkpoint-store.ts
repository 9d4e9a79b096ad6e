/**
 * Actor checkpoints: small keyed state (what the collector fetched last, the ladder's position).
 * Values are encoded with msgpack in structured-clone mode, so anything structuredClone accepts
 * (Maps, Sets, Dates, typed arrays, cycles) round-trips. `put` and `delete` resolve once the change
 * is committed and flushed to disk.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { CheckpointStore } from './types.ts';

export class LmdbCheckpointStore implements CheckpointStore {
  private readonly db: Database<unknown, string>;

  constructor(env: RootDatabase) {
    this.db = env.openDB<unknown, string>({ name: 'checkpoints', encoding: 'msgpack', structuredClone: true } as never);
  }

  get<T>(key: string): T | undefined {
    checkKey(key);
    return this.db.get(key) as T | undefined;
  }

  async put<T>(key: string, value: T): Promise<void> {
    checkKey(key);
    if (value === undefined) throw Object.assign(new TypeError(`checkpoint ${key}: value is undefined (use delete)`), { code: 'BAD_CHECKPOINT' });
    await this.db.put(key, value);
    await this.db.flushed;
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.db.remove(key);
    await this.db.flushed;
  }
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 400) {
    throw Object.assign(new TypeError(`checkpoint key must be a non-empty string of at most 400 characters, got ${JSON.stringify(key)}`), {
      code: 'BAD_CHECKPOINT',
    });
  }
}
