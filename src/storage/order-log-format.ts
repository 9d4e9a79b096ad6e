/**
 * The order journal's file format (the journal is order-log.ts): an 8-byte magic, then frames
 * `[u32 LE payload length][u32 LE crc32 of payload][payload]`, each payload an order record as UTF-8
 * JSON, then zeros. Reading stops at a zero length, or at the first frame that is incomplete or fails
 * its checksum (a write cut by a crash).
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { OrderRecord } from './types.ts';

export const MAGIC = Buffer.from('BKORDJ01', 'latin1');
export const HEADER = 8;

/** Reads the frames of `data` from `from`, handing each record on; returns how many were good and where they end. */
export function readFrames(data: Buffer, from: number, onRecord: (record: OrderRecord) => void): { frames: number; end: number } {
  let off = from;
  let frames = 0;
  while (off + 8 <= data.length) {
    const len = data.readUInt32LE(off);
    if (len === 0 || off + 8 + len > data.length) break;
    const payload = data.subarray(off + 8, off + 8 + len);
    if (crc32(payload) !== data.readUInt32LE(off + 4)) break;
    let record: OrderRecord;
    try {
      record = JSON.parse(payload.toString('utf8')) as OrderRecord;
    } catch {
      break;
    }
    if (typeof record?.clientOrderId !== 'string') break;
    onRecord(record);
    frames++;
    off += 8 + len;
  }
  return { frames, end: off };
}

/** Writes `records` as a new journal file and puts it in place of `file` (temporary file, fsync, rename, directory fsync). */
export function writeJournalFile(file: string, records: Iterable<OrderRecord>): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    const parts: Buffer[] = [MAGIC];
    for (const r of records) {
      const payload = Buffer.from(JSON.stringify(r), 'utf8');
      const head = Buffer.allocUnsafe(8);
      head.writeUInt32LE(payload.length, 0);
      head.writeUInt32LE(crc32(payload), 4);
      parts.push(head, payload);
    }
    fs.writeSync(fd, Buffer.concat(parts));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDir(path.dirname(file));
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
