/**
 * Opens barkeep's storage: the LMDB environment (the bar cache and actor checkpoints, as named
 * databases in one environment) and the order journal, a file of its own beside it (order-log.ts)
 * so an order's fdatasync never waits behind a bar batch. The journal is opened on first use of
 * `orders`, which only the trader's thread makes. Every thread (main, each actor's worker) calls openStorage
 * on the same path and gets its own handles over the shared memory map; LMDB serializes writers
 * across threads and processes, and readers never block.
 *
 * Durability (all stores): a write's promise resolves once its transaction is committed and
 * flushed (lmdb-js's default sync mode, overlappingSync on Linux: commit, then fsync outside the
 * write lock; we wait for both). Never opened with noSync: a SIGKILL or power loss after a
 * resolved write loses nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import type { BarSize } from '../market/bar-size.ts';
import { BarStore } from './bar-store.ts';
import { LmdbCheckpointStore } from './checkpoint-store.ts';
import { DeliveryLog } from './delivery-log.ts';
import { FileOrderJournal, JOURNAL_FILE } from './order-log.ts';
import { LmdbOrderJournal } from './order-journal.ts';
import type { BarSource, CheckpointStore, OrderJournal } from './types.ts';

export interface StorageOptions {
  /** Directory of the LMDB environment (created if missing). */
  path: string;
  retentionDays?: Partial<Record<BarSize, number>>;
  sourcePrecedence?: BarSource[];
}

export interface Storage {
  bars: BarStore;
  checkpoints: CheckpointStore;
  orders: OrderJournal;
  /** What the arbiter handed the trader (bar keys and rungs), for `barkeep replay`. */
  deliveries: DeliveryLog;
  /** Stops background pruning, waits for pending writes, closes this thread's handles. */
  close(): Promise<void>;
}

/** Where the environment lives for barkeep's data directory: the directory itself (data.mdb, lock.mdb). */
export function storagePath(dataDir: string): string {
  return path.resolve(dataDir);
}

/** True when an environment exists at `envPath` (so a reader need not create one). */
export function storageExists(envPath: string): boolean {
  return fs.existsSync(path.join(envPath, 'data.mdb'));
}

export function openStorage(opts: StorageOptions): Storage {
  if (typeof opts?.path !== 'string' || opts.path.length === 0) {
    throw Object.assign(new TypeError('openStorage: path must be a non-empty string'), { code: 'BAD_STORAGE_PATH' });
  }
  // noSubdir: false, always: lmdb-js otherwise takes a last path component with a dot
  // (`./bk.v2`, `./barkeep.data`) for a file name and fails or creates a file.
  const env: RootDatabase = open({ path: opts.path, maxDbs: 16, noSubdir: false });
  try {
    const bars = new BarStore(env, { retentionDays: opts.retentionDays, sourcePrecedence: opts.sourcePrecedence });
    const checkpoints = new LmdbCheckpointStore(env);
    let orders: FileOrderJournal | undefined;
    const deliveries = new DeliveryLog(env);
    let closing: Promise<void> | undefined;
    return {
      bars,
      checkpoints,
      get orders(): OrderJournal {
        // Data directories from before the journal file carry their orders in LMDB: they move over once.
        orders ??= new FileOrderJournal({ path: path.join(opts.path, JOURNAL_FILE), legacy: () => new LmdbOrderJournal(env).all() });
        return orders;
      },
      deliveries,
      close() {
        closing ??= (async () => {
          bars.stop();
          orders?.close();
          await env.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    void env.close();
    throw err;
  }
}
