import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogStream } from "../../proto/batch.js";
import type { KeySpec } from "../../common/signing.js";

/** An Ed25519 key pair as PEM files: the private half for the sender, the public half for the collector. */
export function ed25519Keys(
  id: string,
  dir = mkdtempSync(join(tmpdir(), "bifrost-keys-")),
): { signer: KeySpec; verifier: KeySpec } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privateFile = join(dir, `${id}.key.pem`);
  const publicFile = join(dir, `${id}.pub.pem`);
  writeFileSync(privateFile, privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(publicFile, publicKey.export({ type: "spki", format: "pem" }));
  return {
    signer: { id, algorithm: "ed25519", file: privateFile },
    verifier: { id, algorithm: "ed25519", file: publicFile },
  };
}

export function hmacKey(id: string, secret = `${id}-shared-secret-of-at-least-32-bytes`): KeySpec {
  return { id, algorithm: "hmac-sha256", key: secret };
}

/** One audit record as it was handed to the batcher: its tenant, stream labels and parsed line. */
export interface AuditRecord {
  tenant: string;
  labels: Record<string, string>;
  event: Record<string, unknown>;
}

/** A Batcher stand-in that keeps what it is given, for reading the audit trail back. */
export class RecordingBatcher {
  readonly records: AuditRecord[] = [];
  /** While set, every add fails as a full disk buffer would. */
  failing = false;

  add(tenant: string, data: { streams?: LogStream[] }): Promise<void> {
    if (this.failing) return Promise.reject(new Error("disk buffer full"));
    for (const stream of data.streams ?? []) {
      for (const entry of stream.entries)
        this.records.push({
          tenant,
          labels: { ...stream.labels },
          event: JSON.parse(entry.line) as Record<string, unknown>,
        });
    }
    return Promise.resolve();
  }

  of(id: string): AuditRecord[] {
    return this.records.filter((r) => r.event["id"] === id);
  }
}

/** Whether a process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * restart_service as a node runs it, for a test service `<dir>/<service>.mjs` whose pid is in `pidFile`: a
 * script (written to `<dir>/restart.mjs`) that stops it with `signal`, starts it again detached (as systemd
 * would own it) and exits once the new process has written its pid; returned as the collector's allow-list
 * entry that runs it.
 */
export function restartServiceAction(dir: string, pidFile: string, signal: "SIGTERM" | "SIGKILL") {
  const script = join(dir, "restart.mjs");
  writeFileSync(
    script,
    `import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
const [pidFile, service] = process.argv.slice(2);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const waitFor = async (ok) => { const deadline = Date.now() + 10000; while (!ok()) { if (Date.now() > deadline) process.exit(2); await new Promise((r) => setTimeout(r, 20)); } };
const old = Number(readFileSync(pidFile, "utf8"));
if (alive(old)) process.kill(old, "${signal}");
await waitFor(() => !alive(old));
const child = spawn(process.execPath, [join(dirname(process.argv[1]), service + ".mjs"), pidFile], { detached: true, stdio: "ignore" });
child.unref();
await waitFor(() => readFileSync(pidFile, "utf8") === String(child.pid));
console.log("restarted " + service + ": " + old + " -> " + child.pid);
`,
  );
  return {
    name: "restart_service",
    command: [process.execPath, script, pidFile, "{{service}}"],
    params: { service: { pattern: "[a-z][a-z0-9-]{0,31}" } },
    timeout_ms: 20_000,
    cooldown_ms: 60_000,
  };
}
