import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../../../common/atomic-file.js";

/**
 * Where the tail is in one file. A file is known by device and inode, and by a checksum of its first bytes so
 * that a new file which got a deleted file's inode is not mistaken for it.
 */
export interface FilePosition {
  /** The file's name when last seen (after a rename rotation, its new name). */
  path: string;
  /** The `filename` label of its stream: the path it was first tailed under. */
  filename: string;
  dev: string;
  ino: string;
  /** CRC32C (hex) of the first `fingerprintBytes` bytes. */
  fingerprint: string;
  fingerprintBytes: number;
  /** Byte offset just after the last line the disk buffer holds. */
  offset: number;
}

export function identityKey(dev: bigint | string, ino: bigint | string): string {
  return `${dev}:${ino}`;
}

const VERSION = 1;

/**
 * The positions file: one JSON document, replaced atomically (temporary file, fsync, rename, fsync of the
 * directory), so a crash leaves either the old or the new positions, never a torn file.
 */
export class Positions {
  private readonly entries = new Map<string, FilePosition>();
  private dirty = false;

  private constructor(private readonly file: string) {}

  /** Reads the file; a missing file means no positions, an unreadable one is reported through `problem`. */
  static load(file: string): { positions: Positions; problem?: string } {
    const positions = new Positions(file);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { positions };
      return { positions, problem: (err as Error).message };
    }
    try {
      const doc = JSON.parse(text) as { version?: number; files?: FilePosition[] };
      if (doc.version !== VERSION || !Array.isArray(doc.files))
        throw new Error(`unsupported positions file version ${String(doc.version)}`);
      for (const entry of doc.files) {
        if (
          typeof entry.path === "string" &&
          typeof entry.filename === "string" &&
          typeof entry.dev === "string" &&
          typeof entry.ino === "string" &&
          Number.isSafeInteger(entry.offset) &&
          entry.offset >= 0
        ) {
          positions.entries.set(identityKey(entry.dev, entry.ino), { ...entry });
        }
      }
    } catch (err) {
      return { positions, problem: `${file} is not a positions file: ${(err as Error).message}` };
    }
    return { positions };
  }

  get(key: string): FilePosition | undefined {
    return this.entries.get(key);
  }

  set(position: FilePosition): void {
    const key = identityKey(position.dev, position.ino);
    const known = this.entries.get(key);
    if (known && (Object.keys(position) as (keyof FilePosition)[]).every((field) => known[field] === position[field]))
      return;
    this.entries.set(key, { ...position });
    this.dirty = true;
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.dirty = true;
  }

  keys(): string[] {
    return [...this.entries.keys()];
  }

  /** Writes the positions if they changed since the last save. */
  save(): void {
    if (!this.dirty) return;
    writeFileAtomic(this.file, `${JSON.stringify({ version: VERSION, files: [...this.entries.values()] })}\n`);
    this.dirty = false;
  }
}
