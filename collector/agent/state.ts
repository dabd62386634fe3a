import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../common/atomic-file.js";
import { uidBytes, uidText, uuidV7 } from "../../proto/opamp.js";

// What the collector's agent keeps on disk (collector.fleet.state_dir), each file replaced atomically:
//   instance-uid     the OpAMP instance uid, made once
//   last-good.json   the remote configuration that last ran for confirm_ms: the fallback
//   pending.json     a remote configuration being tried, with the number of process starts it has had
//   remote.json      the last remote configuration's hash and status (applied / failed, and why), so that a
//                    restarted collector reports the same and the server does not send a refused one again

export interface StoredConfig {
  /** Hex SHA-256 of the document's bytes (the OpAMP config hash); EMPTY for "the local file alone". */
  hash: string;
  /** The YAML document as received; "" for the local file alone. */
  body: string;
  /** Its signature file as received. */
  signature: string;
  /** The signature's issued_at: later configurations must not be older. */
  issued_at: number;
}

export interface PendingConfig extends StoredConfig {
  /** Process starts with this configuration so far (this one included). */
  starts: number;
}

export interface RemoteStatusRecord {
  hash: string;
  status: "applied" | "failed";
  error: string;
}

export class AgentStateDir {
  constructor(readonly dir: string) {}

  private path(name: string): string {
    return join(this.dir, name);
  }

  private read<T>(name: string): T | undefined {
    try {
      return JSON.parse(readFileSync(this.path(name), "utf8")) as T;
    } catch {
      return undefined;
    }
  }

  private write(name: string, value: unknown): void {
    writeFileAtomic(this.path(name), `${JSON.stringify(value)}\n`);
  }

  /** The instance uid, made (UUID v7) and kept on first use. */
  instanceUid(): Uint8Array {
    const file = this.path("instance-uid");
    if (existsSync(file)) {
      try {
        return uidBytes(readFileSync(file, "utf8").trim());
      } catch {
        // A damaged file: a new identity is better than none.
      }
    }
    const uid = uuidV7();
    this.setInstanceUid(uid);
    return uid;
  }

  setInstanceUid(uid: Uint8Array): void {
    writeFileAtomic(this.path("instance-uid"), `${uidText(uid)}\n`);
  }

  lastGood(): StoredConfig | undefined {
    return this.read("last-good.json");
  }

  setLastGood(config: StoredConfig): void {
    this.write("last-good.json", config);
  }

  pending(): PendingConfig | undefined {
    return this.read("pending.json");
  }

  setPending(config: PendingConfig): void {
    this.write("pending.json", config);
  }

  clearPending(): void {
    rmSync(this.path("pending.json"), { force: true });
  }

  remoteStatus(): RemoteStatusRecord | undefined {
    return this.read("remote.json");
  }

  setRemoteStatus(status: RemoteStatusRecord): void {
    this.write("remote.json", status);
  }
}
