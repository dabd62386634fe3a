import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Admin, Kafka, logLevel } from "kafkajs";
import { freePort, REPO_ROOT } from "./services.js";

// A Kafka KRaft cluster of its own for a test, on loopback and free ports: every node a broker and a controller
// (a quorum of three survives one node down), from the same Maven jars that deploy/local/services.sh installs.
// Defaults are a production cluster's where they matter for durability: replication factor 3 for every topic
// (the consumer offsets too), min.insync.replicas 2, no unclean leader election, no automatic topic creation.

const KAFKA_VERSION = "3.9.1";
const OFFSETS_PARTITIONS = 12;

export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
  dir: string;
  child: ChildProcess | undefined;
}

export interface KafkaClusterOptions {
  nodes?: number;
  /** Broker settings added to (or replacing) the defaults. */
  settings?: Record<string, string | number | boolean>;
  /** Client ports to use, one per node, when a test must know them before the cluster starts. */
  ports?: number[];
}

/** Kafka's partition of the consumer offsets topic that holds a group: Utils.abs(groupId.hashCode()) % partitions. */
export function offsetsPartitionOf(groupId: string, partitions = OFFSETS_PARTITIONS): number {
  let hash = 0;
  for (let i = 0; i < groupId.length; i++) hash = (Math.imul(hash, 31) + groupId.charCodeAt(i)) | 0;
  return (hash === -2147483648 ? 0 : Math.abs(hash)) % partitions;
}

export class KafkaCluster {
  private constructor(
    readonly nodes: KafkaNode[],
    private readonly libs: string,
  ) {}

  /** Formats and starts the nodes, and resolves once every one of them serves clients. */
  static async start(options: KafkaClusterOptions = {}): Promise<KafkaCluster> {
    const count = options.nodes ?? 3;
    await promisify(execFile)("bash", [join(REPO_ROOT, "deploy/local/services.sh"), "install", "kafka"], {
      timeout: 600_000,
    });
    const libs = join(
      process.env.BIFROST_CACHE ?? join(homedir(), ".cache", "bifrost"),
      `kafka-${KAFKA_VERSION}`,
      "libs",
    );
    const root = mkdtempSync(join(tmpdir(), "bifrost-kafka-cluster-"));
    const nodes: KafkaNode[] = [];
    for (let i = 0; i < count; i++) {
      nodes.push({
        id: i + 1,
        port: options.ports?.[i] ?? (await freePort()),
        controllerPort: await freePort(),
        dir: join(root, `node-${i + 1}`),
        child: undefined,
      });
    }
    const voters = nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(",");
    const replication = Math.min(3, count);
    const clusterId = randomBytes(16).toString("base64url");
    const cluster = new KafkaCluster(nodes, libs);
    for (const node of nodes) {
      mkdirSync(join(node.dir, "data"), { recursive: true });
      const settings: Record<string, string | number | boolean> = {
        "process.roles": "broker,controller",
        "node.id": node.id,
        "controller.quorum.voters": voters,
        listeners: `PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
        "advertised.listeners": `PLAINTEXT://127.0.0.1:${node.port}`,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": join(node.dir, "data"),
        "num.partitions": 3,
        "default.replication.factor": replication,
        "min.insync.replicas": Math.min(2, count),
        "unclean.leader.election.enable": false,
        "auto.create.topics.enable": false,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": Math.min(2, count),
        "group.initial.rebalance.delay.ms": 0,
        "message.max.bytes": 16777216,
        "replica.fetch.max.bytes": 16777216,
        ...options.settings,
      };
      writeFileSync(
        join(node.dir, "server.properties"),
        Object.entries(settings)
          .map(([k, v]) => `${k}=${v}`)
          .join("\n") + "\n",
      );
      writeFileSync(
        join(node.dir, "log4j.properties"),
        [
          "log4j.rootLogger=INFO, file",
          "log4j.appender.file=org.apache.log4j.FileAppender",
          `log4j.appender.file.File=${join(node.dir, "server.log")}`,
          "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
          "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
          "",
        ].join("\n"),
      );
      await promisify(execFile)(
        "java",
        [
          ...cluster.javaArgs(node),
          "kafka.tools.StorageTool",
          "format",
          "-t",
          clusterId,
          "-c",
          join(node.dir, "server.properties"),
        ],
        { timeout: 180_000 },
      );
    }
    await Promise.all(nodes.map((n) => cluster.startNode(n.id)));
    return cluster;
  }

  get brokers(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  node(id: number): KafkaNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no Kafka node ${id}`);
    return node;
  }

  running(id: number): boolean {
    const child = this.node(id).child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  private javaArgs(node: KafkaNode): string[] {
    // Small heaps and the client compiler only: three brokers share a busy machine with the test's processes.
    return [
      "-Xms128m",
      "-Xmx512m",
      "-XX:+UseG1GC",
      "-XX:TieredStopAtLevel=1",
      "-Djava.awt.headless=true",
      `-Dlog4j.configuration=file:${join(node.dir, "log4j.properties")}`,
      "-cp",
      `${this.libs}/*`,
    ];
  }

  /** Starts (or restarts, on its data) node `id` and resolves once it logged that it serves clients. */
  async startNode(id: number, timeoutMs = 300_000): Promise<void> {
    const node = this.node(id);
    if (this.running(id)) return;
    const log = join(node.dir, "server.log");
    let offset = 0;
    try {
      offset = statSync(log).size;
    } catch {
      // first start
    }
    const out = openSync(join(node.dir, "stdout.log"), "a");
    const child = spawn("java", [...this.javaArgs(node), "kafka.Kafka", join(node.dir, "server.properties")], {
      stdio: ["ignore", out, out],
    });
    node.child = child;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`Kafka node ${id} exited during start; see ${node.dir}/server.log`);
      let started = false;
      try {
        started = readFileSync(log).subarray(offset).includes("Kafka Server started");
      } catch {
        // no log yet
      }
      if (started) return;
      if (Date.now() > deadline) throw new Error(`Kafka node ${id} not started after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Sends `signal` to node `id` (SIGKILL: a crash; SIGTERM: a controlled shutdown) and waits for its exit. */
  async stopNode(id: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.node(id).child;
    if (child === undefined || !this.running(id)) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    await exited;
    clearTimeout(timer);
  }

  client(clientId = "kafka-cluster-test"): Kafka {
    return new Kafka({
      clientId,
      brokers: this.nodes.filter((n) => this.running(n.id)).map((n) => `127.0.0.1:${n.port}`),
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 200 },
    });
  }

  private async withAdmin<T>(use: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = this.client().admin();
    await admin.connect();
    try {
      return await use(admin);
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  /** Leader node of each partition of `topic`. */
  leaders(topic: string): Promise<Map<number, number>> {
    return this.withAdmin(async (admin) => {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      return new Map(metadata.topics[0]!.partitions.map((p) => [p.partitionId, p.leader]));
    });
  }

  /** The node that coordinates consumer group `groupId`: the leader of its consumer offsets partition. */
  async coordinatorOf(groupId: string): Promise<number> {
    const leader = (await this.leaders("__consumer_offsets")).get(offsetsPartitionOf(groupId));
    if (leader === undefined || leader < 0) throw new Error(`group ${groupId} has no coordinator`);
    return leader;
  }

  /**
   * Resolves once every node runs and every partition of `topics` (and of the consumer offsets) has a leader
   * and all its replicas in sync: a fault injected before then would hit a cluster still healing.
   */
  async waitHealthy(topics: string[], timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      if (this.nodes.every((n) => this.running(n.id))) {
        const healthy = await this.withAdmin(async (admin) => {
          // The consumer offsets topic exists once a group has asked for its coordinator.
          const offsets = (await admin.listTopics()).includes("__consumer_offsets") ? ["__consumer_offsets"] : [];
          const metadata = await admin.fetchTopicMetadata({ topics: [...topics, ...offsets] });
          const unhealthy = metadata.topics.flatMap((t) =>
            t.partitions
              .filter((p) => p.leader < 0 || p.isr.length < p.replicas.length)
              .map((p) => `${t.name}/${p.partitionId} leader ${p.leader} isr ${p.isr.join(",")}`),
          );
          last = unhealthy.slice(0, 3).join("; ");
          return unhealthy.length === 0;
        }).catch((err: unknown) => {
          last = (err as Error).message;
          return false;
        });
        if (healthy) return;
      } else last = "nodes down";
      if (Date.now() > deadline) throw new Error(`Kafka cluster not healthy after ${timeoutMs} ms: ${last}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.stopNode(n.id, "SIGKILL")));
  }
}
