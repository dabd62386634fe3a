import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { AgentRecord, RolloutRecord } from "../../proto/fleet.js";
import { freePort, REPO_ROOT } from "./services.js";
import { until } from "./wait.js";

// Fleet servers, keys and third-party OpAMP implementations for the fleet tests.

export const CACHE = process.env["BIFROST_CACHE"] ?? join(homedir(), ".cache", "bifrost");

/** An Ed25519 key pair in PEM files: the fleet signs with the private one, collectors verify with the public. */
export function writeKeys(dir: string): { privateFile: string; publicFile: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const privateFile = join(dir, "fleet.key.pem");
  const publicFile = join(dir, "fleet.pub.pem");
  writeFileSync(privateFile, privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(publicFile, publicKey.export({ type: "spki", format: "pem" }));
  return { privateFile, publicFile };
}

export type ApiAgent = AgentRecord & { state: string };

/** `bifrost fleet --config <file>` as a child process; start() again after a kill runs it on the same state. */
export class FleetServerProcess {
  child: ChildProcess | undefined;
  readonly url: string;
  readonly wsUrl: string;
  readonly configFile: string;
  readonly logFile: string;

  private constructor(
    dir: string,
    readonly port: number,
    config: object,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.wsUrl = `ws://127.0.0.1:${port}/v1/opamp`;
    this.configFile = join(dir, "fleet.yaml");
    this.logFile = join(dir, "fleet.log");
    writeFileSync(this.configFile, JSON.stringify(config, null, 1));
  }

  /** `fleet` is merged over a listener on a free port; `store` is the storage and clickhouse sections. */
  static async configure(
    dir: string,
    options: { fleet: Record<string, unknown>; store: Record<string, unknown> },
  ): Promise<FleetServerProcess> {
    const port = await freePort();
    return new FleetServerProcess(dir, port, {
      log: { level: "info" },
      ...options.store,
      fleet: { listen: `127.0.0.1:${port}`, ...options.fleet },
    });
  }

  async start(): Promise<void> {
    const log = openSync(this.logFile, "a");
    this.child = spawn(process.execPath, [join(REPO_ROOT, "dist", "cli.js"), "fleet", "--config", this.configFile], {
      stdio: ["ignore", log, log],
    });
    const child = this.child;
    await until(
      "the fleet server serving its API",
      async () => {
        if (child.exitCode !== null) throw new Error(`the fleet server exited: see ${this.logFile}`);
        return (await fetch(`${this.url}/fleet/api/v1/status`).catch(() => null))?.status === 200;
      },
      120_000,
    );
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  async api<T>(path: string, init?: RequestInit): Promise<T> {
    // A fresh connection per call: a kept-alive one may be closed by the server just as it is reused.
    const response = await fetch(`${this.url}/fleet/api/v1/${path}`, { ...init, headers: { Connection: "close" } });
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  async agents(query = ""): Promise<ApiAgent[]> {
    return (await this.api<{ agents: ApiAgent[] }>(`agents${query}`)).agents;
  }

  async rollouts(): Promise<RolloutRecord[]> {
    return (await this.api<{ rollouts: RolloutRecord[] }>("rollouts")).rollouts;
  }

  logs(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8") : "";
  }
}

/** The Go toolchain: `go` on the PATH, or the official install location. */
export function goBinary(): string {
  for (const candidate of ["go", "/usr/local/go/bin/go"]) {
    try {
      execFileSync(candidate, ["version"], { stdio: "ignore" });
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error("the Go toolchain is needed to build the opamp-go test server (test/opamp-interop/go-server)");
}

/**
 * The opamp-go test server (test/opamp-interop/go-server), built with the local Go toolchain from the Go module
 * proxy into the cache, once per version of its sources.
 */
export function opampGoServer(): string {
  const source = join(REPO_ROOT, "test", "opamp-interop", "go-server");
  const hash = createHash("sha256");
  for (const file of ["main.go", "go.mod", "go.sum"]) hash.update(readFileSync(join(source, file)));
  const binary = join(CACHE, `opamp-go-server-${hash.digest("hex").slice(0, 16)}`);
  if (!existsSync(binary)) {
    mkdirSync(CACHE, { recursive: true });
    execFileSync(goBinary(), ["build", "-o", binary, "."], { cwd: source, stdio: ["ignore", "inherit", "inherit"] });
  }
  return binary;
}

/** The Python interpreter of the venv holding opentelemetry-opamp-client (deploy/local/services.sh install opamp). */
export function opampPython(): string {
  const python = join(CACHE, "opamp-venv", "bin", "python");
  if (!existsSync(python))
    execFileSync("bash", [join(REPO_ROOT, "deploy", "local", "services.sh"), "install", "opamp"], { stdio: "inherit" });
  return python;
}
