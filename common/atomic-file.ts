import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the old file or the new one whole:
 * a temporary file beside it, fsynced, renamed over it, and the directory fsynced for the rename. Without
 * `syncDirectory`, a crash may leave the old file after the call returned: for a file rewritten so often that
 * an older version is harmless (the disk buffer's delivery cursor: batches after it are sent again, and the
 * store drops replays).
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, syncDirectory = true): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, data);
  const fd = openSync(temporary, "r");
  fsyncSync(fd);
  closeSync(fd);
  renameSync(temporary, path);
  if (!syncDirectory) return;
  const dir = openSync(dirname(path), "r");
  fsyncSync(dir);
  closeSync(dir);
}
