import { type ChildProcess, execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import type { Kafka } from "kafkajs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// Where the real services started by deploy/local/services.sh listen (npm test's pretest starts them).
export const KAFKA_BROKERS = (
  process.env.BIFROST_TEST_KAFKA_BROKERS ?? `127.0.0.1:${process.env.BIFROST_KAFKA_PORT ?? 9092}`
).split(",");
export const CLICKHOUSE_URL =
  process.env.BIFROST_TEST_CLICKHOUSE_URL ?? `http://127.0.0.1:${process.env.BIFROST_CLICKHOUSE_PORT ?? 8123}`;

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** A name no other test run uses, for topics, groups, databases. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/**
 * Creates topics and waits until the broker serves metadata with a leader for every partition: right after
 * creation a busy broker can still answer UNKNOWN_TOPIC_OR_PARTITION to producers and consumer groups.
 */
export async function createTopics(kafka: Kafka, topics: { topic: string; numPartitions: number }[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // kafkajs's own waitForLeaders gives up on the first UNKNOWN_TOPIC_OR_PARTITION; the loop below waits instead.
    await admin.createTopics({ topics, waitForLeaders: false });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await admin
        .fetchTopicMetadata({ topics: topics.map((t) => t.topic) })
        .then((metadata) =>
          topics.every((wanted) => {
            const found = metadata.topics.find((t) => t.name === wanted.topic);
            return (
              found !== undefined &&
              found.partitions.length === wanted.numPartitions &&
              found.partitions.every((p) => p.leader >= 0)
            );
          }),
        )
        .catch(() => false);
      if (ready) return;
      if (Date.now() > deadline)
        throw new Error(`topics ${topics.map((t) => t.topic).join(", ")} have no leaders after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** Deletes a test's topics, so that the broker does not accumulate partitions run after run. */
export async function deleteTopics(kafka: Kafka, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics, timeout: 30_000 });
  } finally {
    await admin.disconnect();
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts a private chDB HTTP front end (for tests that need their own settings, such as credentials). */
export async function startChdbHttp(
  extraArgs: string[] = [],
  port?: number,
  dataDir = mkdtempSync(join(tmpdir(), "chdb-")),
): Promise<{ url: string; dataDir: string; process: ChildProcess; stop(signal?: NodeJS.Signals): Promise<void> }> {
  port ??= await freePort();
  const python = join(process.env.BIFROST_CACHE ?? join(homedir(), ".cache", "bifrost"), "venv", "bin", "python");
  const child = spawn(
    python,
    [
      join(REPO_ROOT, "deploy/local/clickhouse/chdb_http.py"),
      "--port",
      String(port),
      "--data-dir",
      dataDir,
      ...extraArgs,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`chdb_http.py exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/ping`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("chdb_http.py did not answer /ping within 60 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dataDir,
    process: child,
    stop: (signal = "SIGTERM") =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill(signal);
      }),
  };
}

/**
 * A broker of the test's own (deploy/local/services.sh with its own run directory and ports), for tests that
 * stop and restart Kafka without disturbing the shared one.
 */
export async function privateKafka(): Promise<{
  brokers: string[];
  run(command: "up" | "down" | "kill"): Promise<void>;
}> {
  const env = {
    ...process.env,
    BIFROST_RUN_DIR: mkdtempSync(join(tmpdir(), "bifrost-kafka-")),
    BIFROST_KAFKA_PORT: String(await freePort()),
    BIFROST_KAFKA_CONTROLLER_PORT: String(await freePort()),
  };
  const run = async (command: "up" | "down" | "kill") => {
    await promisify(execFile)("bash", [join(REPO_ROOT, "deploy/local/services.sh"), command, "kafka"], {
      env,
      timeout: 320_000,
    });
  };
  await run("up");
  return { brokers: [`127.0.0.1:${env.BIFROST_KAFKA_PORT}`], run };
}
