import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { signRemoteConfig } from "../common/remote-config.js";
import { signingKey } from "../common/signing.js";
import { CollectorProcess } from "./helpers/collector-process.js";
import { FleetServerProcess, opampGoServer, opampPython, writeKeys } from "./helpers/fleet.js";
import { KAFKA_BROKERS, REPO_ROOT, uniqueName } from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// OpAMP is an open protocol; Bifrost's two ends of it must work with other people's other ends:
// - the fleet server manages the OpenTelemetry Python OpAMP client (PyPI opentelemetry-opamp-client), a
//   third-party agent: it registers, gets a remote configuration, reports it applied, gets the next one;
// - the collector works against a server built on opamp-go (the reference implementation, from the Go module
//   proxy): over WebSocket and over plain HTTP it takes a signed configuration and reports its effective one, and
//   it refuses one that is not signed.

const children: ChildProcess[] = [];
function child(command: string, args: string[], logFile: string): ChildProcess {
  const process = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (d: Buffer) => {
    output += d.toString();
    writeFileSync(logFile, output);
  };
  process.stdout!.on("data", keep);
  process.stderr!.on("data", keep);
  children.push(process);
  return process;
}

async function stopChild(process: ChildProcess): Promise<void> {
  if (process.exitCode !== null || process.signalCode !== null) return;
  const exited = new Promise((resolve) => process.once("exit", resolve));
  process.kill("SIGTERM");
  await exited;
}

describe("OpAMP interoperability", () => {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-fleet-interop-"));
  after(async () => {
    for (const process of children) await stopChild(process);
    rmSync(dir, { recursive: true, force: true });
  });

  describe("Bifrost's fleet server manages the OpenTelemetry Python OpAMP client", () => {
    let fleet: FleetServerProcess;
    const source = join(dir, "source");
    const received = join(dir, "python-received.jsonl");
    let agent: ChildProcess;
    after(() => fleet?.stop());

    before(async () => {
      const python = opampPython();
      mkdirSync(source, { recursive: true });
      writeFileSync(
        join(source, "python.yaml"),
        "agent_type: python-demo\nselector: { deployment.environment.name: test }\nconfig:\n  sampler: { ratio: 0.25 }\n",
      );
      fleet = await FleetServerProcess.configure(dir, {
        fleet: { source_dir: source, poll_interval_ms: 300, rollout_tick_ms: 200 },
        store: { storage: { engine: "embedded", path: join(dir, "data") } },
      });
      await fleet.start();
      agent = child(
        python,
        [
          join(REPO_ROOT, "test", "opamp-interop", "python_agent.py"),
          `${fleet.url}/v1/opamp`,
          "python-demo",
          received,
          "0.5",
        ],
        join(dir, "python.log"),
      );
    });

    const lines = () =>
      existsSync(received)
        ? readFileSync(received, "utf8")
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l) as { hash: string; configs: Record<string, unknown> })
        : [];

    it("registers with its description and reports the remote configuration it got as applied", async () => {
      await until("the Python agent applying its first configuration", async () => {
        const [a] = await fleet.agents();
        return (
          a !== undefined && a.remote_status === "applied" && a.remote_hash === a.desired_hash && lines().length > 0
        );
      });
      const [a] = await fleet.agents();
      assert.equal(a!.agent_type, "python-demo");
      assert.equal(a!.version, "1.2.3");
      assert.equal(a!.labels["deployment.environment.name"], "test");
      assert.equal(a!.state, "healthy");
      assert.deepEqual(lines()[0], { hash: a!.desired_hash, configs: { "config.json": { sampler: { ratio: 0.25 } } } });
      const detail = await fleet.api<{ effective_config: string; offered_config: string }>(`agents/${a!.uid}`);
      assert.deepEqual(JSON.parse(detail.effective_config), { sampler: { ratio: 0.25 } });
      assert.deepEqual(JSON.parse(detail.offered_config), { sampler: { ratio: 0.25 } });
    });

    it("gets the next configuration when the source changes, through a rollout", async () => {
      writeFileSync(
        join(source, "python.yaml"),
        "agent_type: python-demo\nselector: { deployment.environment.name: test }\nconfig:\n  sampler: { ratio: 0.5 }\n",
      );
      await until("the second configuration applied", async () => {
        const [a] = await fleet.agents();
        return lines().length >= 2 && a!.remote_status === "applied" && a!.remote_hash === a!.desired_hash;
      });
      assert.deepEqual(lines().at(-1)!.configs, { "config.json": { sampler: { ratio: 0.5 } } });
      await until("the rollout completed", async () => (await fleet.rollouts())[0]!.status === "completed");
      const [latest, first] = await fleet.rollouts();
      assert.equal(latest!.waves[0]!.members.length, 1);
      assert.equal(first!.status, "completed");
    });

    it("is marked disconnected when it says goodbye", async () => {
      await stopChild(agent);
      await until("the agent disconnected", async () => (await fleet.agents())[0]!.state === "disconnected");
    });
  });

  describe("Bifrost's collector works against an opamp-go server", () => {
    const keys = writeKeys(dir);
    const document = "collector:\n  batch:\n    max_entries: 777\n";
    const topic = uniqueName("fleet-interop");

    async function goServer(
      name: string,
      files: Record<string, string>,
    ): Promise<{ url: string; state: () => Record<string, GoAgent> }> {
      const stateFile = join(dir, `${name}-state.json`);
      const paths = Object.entries(files).map(([file, text]) => {
        const path = join(dir, `${name}-${file}`);
        writeFileSync(path, text);
        return `${file}=${path}`;
      });
      const server = child(
        opampGoServer(),
        ["-listen", "127.0.0.1:0", "-files", paths.join(","), "-state", stateFile],
        join(dir, `${name}.log`),
      );
      const address = await new Promise<string>((resolve, reject) => {
        let out = "";
        server.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          const match = /listening (\S+)/.exec(out);
          if (match) resolve(match[1]!);
        });
        server.once("exit", (code) => reject(new Error(`the opamp-go server exited with ${code}`)));
      });
      return {
        url: `127.0.0.1:${address.split(":").pop()}`,
        state: () =>
          existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, "utf8")) as Record<string, GoAgent>) : {},
      };
    }

    function signed(node: string): Record<string, string> {
      const key = signingKey({ id: "fleet", algorithm: "ed25519", file: keys.privateFile });
      const signature = signRemoteConfig(key, node, Buffer.from(document), Date.now());
      return { "bifrost.yaml": document, "bifrost.yaml.sig": JSON.stringify(signature) };
    }

    async function collector(node: string, url: string): Promise<CollectorProcess> {
      mkdirSync(join(dir, node), { recursive: true });
      return CollectorProcess.configure(join(dir, node), {
        nodeId: node,
        kafka: { brokers: KAFKA_BROKERS, topic },
        collector: {
          actions: { keys: [{ id: "fleet", algorithm: "ed25519", file: keys.publicFile }] },
          fleet: { enabled: true, url, heartbeat_interval_ms: 500, health_interval_ms: 500, confirm_ms: 1000 },
        },
      });
    }

    const agentOf = (state: Record<string, GoAgent>, node: string) =>
      Object.values(state).find((a) => a.description?.["bifrost.node.id"] === node);

    for (const transport of ["websocket", "http"] as const) {
      it(`takes a signed configuration over ${transport} and reports it applied and its effective configuration`, async () => {
        const node = `go-${transport}`;
        const server = await goServer(node, signed(node));
        const scheme = transport === "websocket" ? "ws" : "http";
        const process = await collector(node, `${scheme}://${server.url}/v1/opamp`);
        await process.start();
        try {
          await until(`the collector over ${transport} applying the opamp-go server's configuration`, () => {
            const agent = agentOf(server.state(), node);
            return (
              agent?.remote_config_status === "RemoteConfigStatuses_APPLIED" &&
              (agent.effective_config?.["bifrost.yaml"] ?? "").includes("max_entries: 777")
            );
          });
          const agent = agentOf(server.state(), node)!;
          assert.equal(agent.remote_config_hash, createHash("sha256").update(document).digest("hex"));
          assert.equal(agent.description["service.name"], "bifrost-collector");
          assert.equal(agent.healthy, true);
          assert.deepEqual([...(agent.health_components ?? [])].sort(), [
            "config",
            "disk_buffer",
            "receivers",
            "shipper",
          ]);
          assert.ok(
            !agent.effective_config!["bifrost.yaml"]!.includes("BEGIN PUBLIC KEY"),
            "no key material is reported",
          );
          assert.equal(await process.metric("bifrost_collector_fleet_config_info", 'source="remote"'), 1);
        } finally {
          await process.stop();
        }
      });
    }

    it("refuses an unsigned configuration, reports why, and keeps running its own", async () => {
      const node = "go-unsigned";
      const server = await goServer(node, { "bifrost.yaml": document });
      const process = await collector(node, `http://${server.url}/v1/opamp`);
      await process.start();
      try {
        await until(
          "the refusal reported",
          () => agentOf(server.state(), node)?.remote_config_status === "RemoteConfigStatuses_FAILED",
        );
        const agent = agentOf(server.state(), node)!;
        assert.match(agent.remote_config_error, /not signed/);
        assert.ok(!(agent.effective_config?.["bifrost.yaml"] ?? "").includes("max_entries: 777"));
        assert.equal((await fetch(`${process.url}/ready`)).status, 200);
        assert.equal(await process.metric("bifrost_collector_fleet_config_info", 'source="local"'), 1);
      } finally {
        await process.stop();
      }
    });
  });
});

interface GoAgent {
  description: Record<string, string>;
  remote_config_hash: string;
  remote_config_status: string;
  remote_config_error: string;
  effective_config?: Record<string, string>;
  healthy?: boolean;
  health_components?: string[];
}
