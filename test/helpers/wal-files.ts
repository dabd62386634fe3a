import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// The collector's disk buffer files as the recovery tests damage them (record layout: collector/wal.ts).

export interface WalRecordFile {
  file: string;
  offset: number;
  /** Payload bytes (the record is 16 bytes more). */
  length: number;
}

/** The segment files of a disk buffer directory, oldest first. */
export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".wal"))
    .sort()
    .map((f) => join(dir, f));
}

/** Where each record of an undamaged buffer lies, by sequence. */
export function locateRecords(dir: string): Map<number, WalRecordFile> {
  const out = new Map<number, WalRecordFile>();
  for (const file of segmentFiles(dir)) {
    const buf = readFileSync(file);
    for (let pos = 0; pos < buf.length;) {
      const length = buf.readUInt32LE(pos);
      out.set(Number(buf.readBigUInt64LE(pos + 8)), { file, offset: pos, length });
      pos += 16 + length;
    }
  }
  return out;
}

/** The payload of a record, read from its file. */
export function recordPayload(record: WalRecordFile): Buffer {
  const start = record.offset + 16;
  return readFileSync(record.file).subarray(start, start + record.length);
}

/** Flips one byte of a record, `at` bytes into it (0-3 length, 4-7 CRC, 8-15 sequence, 16.. payload). */
export function damageRecord(record: WalRecordFile, at = 20): void {
  const buf = readFileSync(record.file);
  buf[record.offset + at]! ^= 0x5a;
  writeFileSync(record.file, buf);
}
