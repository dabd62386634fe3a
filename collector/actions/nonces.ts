import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { writeFileAtomic } from "../../common/atomic-file.js";

/**
 * Nonces of accepted action envelopes, each kept for as long as its envelope's timestamp would still pass the
 * freshness check, so a captured envelope can never be replayed. The set lives in an append-only file (one
 * "expiry-ms nonce" line each, fsynced before the action runs) so a restart does not reopen the window; the
 * file is rewritten without expired lines when it grows. Bounded: when full of unexpired nonces new ones are
 * refused, never evicted, because forgetting one would reopen its replay.
 */
export class NonceCache {
  private readonly seen = new Map<string, number>();
  private fd: number;
  private lines = 0;

  private constructor(
    private readonly path: string,
    private readonly capacity: number,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const now = Date.now();
    for (const line of text.split("\n")) {
      const space = line.indexOf(" ");
      const expires = Number(line.slice(0, space));
      // A torn last line (crash mid-append) has no space or no number and is skipped.
      if (space > 0 && Number.isFinite(expires) && expires > now) this.seen.set(line.slice(space + 1), expires);
    }
    this.fd = this.rewrite();
  }

  static open(path: string, capacity: number): NonceCache {
    return new NonceCache(path, capacity);
  }

  /** Remembers `nonce` until `expiresAtMs`: "replay" if it is already remembered, "full" if there is no room. */
  remember(nonce: string, expiresAtMs: number, now = Date.now()): "ok" | "replay" | "full" {
    const known = this.seen.get(nonce);
    if (known !== undefined && known > now) return "replay";
    if (this.seen.size >= this.capacity) {
      for (const [n, expires] of this.seen) if (expires <= now) this.seen.delete(n);
      if (this.seen.size >= this.capacity) return "full";
    }
    this.seen.set(nonce, expiresAtMs);
    writeSync(this.fd, `${expiresAtMs} ${nonce}\n`);
    fsyncSync(this.fd);
    if (++this.lines > 2 * this.seen.size + 1024) {
      for (const [n, expires] of this.seen) if (expires <= now) this.seen.delete(n);
      closeSync(this.fd);
      this.fd = this.rewrite();
    }
    return "ok";
  }

  /** Writes the live nonces to a new file that replaces the old one atomically; returns it open for appends. */
  private rewrite(): number {
    writeFileAtomic(this.path, [...this.seen].map(([nonce, expires]) => `${expires} ${nonce}\n`).join(""));
    this.lines = this.seen.size;
    return openSync(this.path, "a");
  }

  close(): void {
    closeSync(this.fd);
  }
}
