/**
 * The order journal as an append-only file of its own (`orders.journal` in the data directory),
 * so an order's durable write never queues behind the bar cache's LMDB transactions: the collector
 * commits bar batches at the same moments (a minute's close) that the trader makes orders, and in
 * one LMDB environment both share one writer lock and one flush.
 *
 * Format: an 8-byte magic, then frames `[u32 LE payload length][u32 LE crc32 of payload][payload]`,
 * the payload a record as UTF-8 JSON, then zeros. The last frame for a client order id wins.
 * Reading stops at a zero length, or at the first frame that is incomplete or fails its checksum
 * (a write cut by a crash); the writer zeroes such a remnant before it appends. A frame is never
 * acknowledged before its fdatasync, so what a crash cuts off was never promised. The zeros are
 * written ahead of the frames (1 MiB, renewed between events), so appending a frame changes
 * neither the file's size nor its block map and its fdatasync flushes data only, with no
 * file-system journal commit to wait for. On first write, a file holding many superseded frames is
 * rewritten with the live records (temporary file, fsync, rename, directory fsync).
 *
 * Durability: `put` resolves once the record is written and fdatasync'ed. When it syncs depends on
 * what the record is for:
 * - a `pending` record is the order about to be sent, and the sender waits for it: it is synced
 *   at once (at the end of the current synchronous stretch, so pending records put together share
 *   one fdatasync: group commit);
 * - any other record (submitted, fills, cancels) states a fact the broker also holds, and nobody
 *   waits for it on the order path: it is written at once and synced by the next pending record's
 *   fdatasync, or after `lazySyncMs` at the latest. So a fill taken at a bar's open does not cost
 *   that bar's order a second fdatasync.
 * Either way the promise resolves only when the record is on disk. Writes and syncs are synchronous
 * calls on the owning thread (the trader's): no thread-pool hop between the order and the disk.
 * After a failed write or fdatasync the journal refuses every later put (what reached the disk is
 * unknown; the restart's reconcile settles it), so no order is sent on an unknown footing.
 *
 * One writer: only the trader's thread opens the journal (openStorage opens it on first use).
 */
import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import type { OrderJournal, OrderRecord, OrderState } from './types.ts';
import { StorageError } from './errors.ts';
import { HEADER, MAGIC, readFrames, writeJournalFile } from './order-log-format.ts';

export const JOURNAL_FILE = 'orders.journal';
const BUFFER_BYTES = 64 * 1024;
/** Zeros kept written ahead of the last frame. */
const PREALLOC = 1024 * 1024;
const MAX_ID = 400;
const OPEN_STATES: ReadonlySet<OrderState> = new Set(['pending', 'submitted', 'partially_filled']);

export interface FileOrderJournalOptions {
  /** The journal file (created if missing). */
  path: string;
  /** Longest a non-pending record waits for its fdatasync; default 5 ms. */
  lazySyncMs?: number;
  /** Records to start from when the file does not exist yet (the LMDB journal of older versions). */
  legacy?: () => Iterable<OrderRecord>;
}

export interface JournalStats {
  /** Frames in the file. */
  frames: number;
  /** Distinct orders. */
  records: number;
  bytes: number;
  /** fdatasync calls made by this process. */
  syncs: number;
  /** Bytes of a torn last frame cleared when this instance became the writer. */
  truncatedBytes: number;
  /** Whether the file was rewritten (compacted or migrated) when opened. */
  rewritten: boolean;
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

function journalError(message: string, cause?: unknown): Error {
  return new StorageError('ORDER_JOURNAL', message, { cause });
}

export class FileOrderJournal implements OrderJournal {
  readonly path: string;
  private readonly lazySyncMs: number;
  private readonly legacy?: () => Iterable<OrderRecord>;
  private readonly records = new Map<string, OrderRecord>();
  /** Set once this instance has written: from then on it owns the file and its map is the truth. */
  private fd: number | undefined;
  /** The end of the last frame (the next frame's offset) for the writer; bytes replayed so far for a reader. */
  private size = 0;
  /** The file's length: frames, then zeros written ahead (see extend). */
  private allocated = 0;
  private extendQueued = false;
  /** The inode the records were read from (a reader reloads when the writer puts a rewritten file in place). */
  private ino = -1;
  private legacyLoaded = false;
  private frames = 0;
  private truncatedBytes = 0;
  private rewritten = false;
  private syncs = 0;
  /** Encoded frames not yet written to the file. */
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  /** Written (or buffered) but not yet fdatasync'ed. */
  private dirty = false;
  private waiters: Waiter[] = [];
  private syncQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private failed: Error | undefined;
  private closed = false;

  /**
   * Opens the journal for reading; nothing on disk changes until the first `put`, which makes this
   * instance the writer (it cuts a torn tail, compacts or migrates then). A reader (any other
   * thread) sees the writer's records as they are appended.
   */
  constructor(opts: FileOrderJournalOptions) {
    if (typeof opts?.path !== 'string' || opts.path.length === 0) throw journalError('order journal: path must be a non-empty string');
    this.path = opts.path;
    this.lazySyncMs = opts.lazySyncMs ?? 5;
    this.legacy = opts.legacy;
    this.refresh();
  }

  /** Inserts or replaces the record; resolves once it is on disk (see the file's comment for when it syncs). */
  put(record: OrderRecord): Promise<void> {
    const id = record?.clientOrderId;
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID) {
      return Promise.reject(Object.assign(new TypeError(`order record: clientOrderId must be a non-empty string, got ${JSON.stringify(id)}`), { code: 'BAD_ORDER' }));
    }
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(journalError('order journal is closed'));
    try {
      if (this.fd === undefined) this.becomeWriter();
      this.append(record);
    } catch (err) {
      return Promise.reject(this.fail(err));
    }
    this.records.set(id, record);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (record.state === 'pending') {
      if (!this.syncQueued) {
        this.syncQueued = true;
        queueMicrotask(() => this.syncNow());
      }
    } else if (this.timer === undefined && !this.syncQueued) {
      this.timer = setTimeout(() => this.syncNow(), this.lazySyncMs);
    }
    return done;
  }

  get(clientOrderId: string): OrderRecord | undefined {
    if (typeof clientOrderId !== 'string' || clientOrderId.length === 0) return undefined;
    if (this.fd === undefined) this.refresh();
    return this.records.get(clientOrderId);
  }

  all(): OrderRecord[] {
    if (this.fd === undefined) this.refresh();
    return [...this.records.values()].sort(byCreation);
  }

  open(): OrderRecord[] {
    return this.all().filter((r) => OPEN_STATES.has(r.state));
  }

  stats(): JournalStats {
    return { frames: this.frames, records: this.records.size, bytes: this.size + this.used, syncs: this.syncs, truncatedBytes: this.truncatedBytes, rewritten: this.rewritten };
  }

  /** Writes and syncs everything put so far, now. Throws when the journal has failed. */
  sync(): void {
    this.syncNow();
    if (this.failed) throw this.failed;
  }

  /** Syncs what is pending and closes the file; later puts are refused. */
  close(): void {
    if (this.closed) return;
    try {
      if (!this.failed && this.fd !== undefined) this.sync();
    } finally {
      this.closed = true;
      if (this.fd !== undefined) fs.closeSync(this.fd);
    }
  }

  // ---------------------------------------------------------------- internals

  /** The group commit: one write and one fdatasync for every record put since the last; never throws. */
  private syncNow(): void {
    this.syncQueued = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.failed) return;
    if (this.dirty || this.used > 0) {
      try {
        this.writeOut();
        fs.fdatasyncSync(this.fd!);
        this.syncs++;
        this.dirty = false;
      } catch (err) {
        this.fail(err);
        return;
      }
    }
    this.settle();
  }

  private append(record: OrderRecord): void {
    const json = JSON.stringify(record);
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const worst = HEADER + json.length * 3;
    if (this.used + worst > this.buf.length) {
      this.writeOut();
      if (worst > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(worst, this.buf.length * 2));
    }
    const at = this.used;
    const n = this.buf.write(json, at + 8, 'utf8');
    this.buf.writeUInt32LE(n, at);
    this.buf.writeUInt32LE(crc32(this.buf.subarray(at + 8, at + 8 + n)), at + 4);
    this.used = at + 8 + n;
    this.frames++;
    this.dirty = true;
  }

  private writeOut(): void {
    let off = 0;
    while (off < this.used) {
      const n = fs.writeSync(this.fd!, this.buf, off, this.used - off, this.size);
      off += n;
      this.size += n;
    }
    this.used = 0;
    if (this.size > this.allocated) this.allocated = this.size;
    if (!this.extendQueued && this.allocated - this.size <= PREALLOC / 4) {
      // Not now: the order this write is for goes out first.
      this.extendQueued = true;
      setTimeout(() => this.extend(), 0);
    }
  }

  private settle(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) w.resolve();
  }

  private fail(err: unknown): Error {
    this.failed ??= journalError(`order journal ${this.path}: write failed (${(err as Error)?.message ?? err}); no order is sent until the trader restarts`, err);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(this.failed);
    return this.failed;
  }

  /** A reader catches up with what the writer appended (or reloads a rewritten file); never writes. */
  private refresh(): void {
    const st = fs.statSync(this.path, { throwIfNoEntry: false });
    if (!st) {
      if (!this.legacyLoaded && this.legacy) for (const r of this.legacy()) this.records.set(r.clientOrderId, r);
      this.legacyLoaded = true;
      return;
    }
    if (st.ino !== this.ino) {
      this.records.clear();
      this.ino = st.ino;
      this.size = 0;
      this.frames = 0;
    }
    if (st.size <= this.size) return;
    const fd = fs.openSync(this.path, 'r');
    let data: Buffer;
    try {
      data = Buffer.allocUnsafe(st.size - this.size);
      let got = 0;
      while (got < data.length) {
        const n = fs.readSync(fd, data, got, data.length - got, this.size + got);
        if (n === 0) break;
        got += n;
      }
      data = data.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
    let from = 0;
    if (this.size === 0) {
      if (data.length < HEADER) return;
      if (!data.subarray(0, HEADER).equals(MAGIC)) {
        throw journalError(`order journal ${this.path} is not a barkeep order journal (bad magic); move it aside to start a new one`);
      }
      from = HEADER;
    }
    const { frames, end } = readFrames(data, from, (r) => this.records.set(r.clientOrderId, r));
    this.frames += frames;
    this.size += end;
  }

  /** The first put: reload from disk, cut a torn tail, compact or migrate if due, and open for appending. */
  private becomeWriter(): void {
    this.records.clear();
    this.ino = -1;
    this.size = 0;
    this.frames = 0;
    const existed = fs.existsSync(this.path);
    const total = existed ? fs.statSync(this.path).size : 0;
    if (existed) this.refresh();
    else if (this.legacy) for (const r of this.legacy()) this.records.set(r.clientOrderId, r);
    const good = this.size;
    // Rewrite when new (with the legacy records, if any), when even the header was torn, or when most frames are superseded.
    const rewrite = !existed || total < HEADER || (this.frames > 1024 && this.frames > 2 * this.records.size);
    if (rewrite) {
      this.rewritten = existed || this.records.size > 0;
      this.rewrite();
      this.frames = this.records.size;
    }
    this.fd = fs.openSync(this.path, 'r+');
    if (rewrite) {
      this.size = fs.fstatSync(this.fd).size;
      this.allocated = this.size;
    } else {
      this.size = good;
      this.allocated = total;
      // Past the last good frame: zeros made ahead of time, and perhaps a frame a crash cut short. Zeroed, so what follows the next frames is never mistaken for one.
      const tail = total > good ? fs.readFileSync(this.path).subarray(good) : Buffer.alloc(0);
      let last = tail.length;
      while (last > 0 && tail[last - 1] === 0) last--;
      this.truncatedBytes = last;
      if (last > 0) {
        fs.writeSync(this.fd, Buffer.alloc(last), 0, last, good);
        fs.fdatasyncSync(this.fd);
      }
    }
    this.extend();
  }

  /**
   * Makes the file PREALLOC bytes longer than what is written, with zeros, and syncs it: a frame
   * written there changes no file size or block map, so its fdatasync has no metadata to commit
   * (no file-system journal commit, which on ext4 queues behind every other file's). Done when the
   * writer opens and, later, between events when less than a quarter of it is left.
   */
  private extend(): void {
    this.extendQueued = false;
    if (this.fd === undefined || this.closed || this.failed) return;
    const want = this.size + this.used + PREALLOC;
    if (this.allocated - this.size - this.used > PREALLOC / 4) return;
    try {
      const zeros = Buffer.alloc(want - this.allocated);
      fs.writeSync(this.fd, zeros, 0, zeros.length, this.allocated);
      fs.fsyncSync(this.fd);
      this.allocated = want;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Writes the live records to a new file and puts it in place of the old one. */
  private rewrite(): void {
    writeJournalFile(this.path, this.records.values());
  }
}

function byCreation(a: OrderRecord, b: OrderRecord): number {
  return a.createdAt - b.createdAt || (a.clientOrderId < b.clientOrderId ? -1 : a.clientOrderId > b.clientOrderId ? 1 : 0);
}
