import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { parseCri, PartialJoiner } from "../collector/processing/cri.js";
import { parseDocker } from "../collector/processing/docker.js";
import { Batcher } from "../collector/buffer/batcher.js";
import { startPodLogs } from "../collector/receivers/kubernetes/pods.js";
import { Wal } from "../collector/buffer/wal.js";
import { configSchema } from "../config.js";
import { exposition } from "../common/metrics.js";
import { decodeBatch } from "../proto/codec.js";
import { testPki } from "./helpers/certs.js";
import { schemaError } from "./helpers/k8s-schema.js";
import { waitFor } from "./helpers/wait.js";

const T = "2024-05-01T10:00:00.123456789Z";
const T_NS = 1_714_557_600_123_456_789n;

describe("container log formats", () => {
  it("CRI: time, stream, full and partial tags, empty content; not CRI: undefined", () => {
    assert.deepEqual(parseCri(`${T} stdout F hello  world`), {
      timeUnixNano: T_NS,
      stream: "stdout",
      partial: false,
      content: "hello  world",
    });
    assert.deepEqual(parseCri(`${T} stderr P piece`)?.partial, true);
    assert.deepEqual(parseCri(`${T} stdout F:x `)?.content, "");
    assert.deepEqual(parseCri(`${T} stdout F`)?.content, "");
    for (const bad of ["plain text", `${T} stdin F x`, `${T} stdout Q x`, `yesterday stdout F x`, ""])
      assert.equal(parseCri(bad), undefined, bad);
  });

  it("Docker json-file: a log without its newline is a partial line", () => {
    assert.deepEqual(parseDocker(JSON.stringify({ log: "done\n", stream: "stderr", time: T })), {
      timeUnixNano: T_NS,
      stream: "stderr",
      partial: false,
      content: "done",
    });
    assert.equal(parseDocker(JSON.stringify({ log: "16k piece", stream: "stdout", time: T }))?.partial, true);
    for (const bad of [
      "{",
      "[]",
      JSON.stringify({ log: 1, stream: "stdout", time: T }),
      JSON.stringify({ log: "x\n", stream: "stdout", time: "now" }),
    ])
      assert.equal(parseDocker(bad), undefined, bad);
  });

  it("partial lines join per stream, take the first piece's time, and are cut at the line limit", () => {
    const joiner = new PartialJoiner({ maxLineBytes: 10, maxPartialLines: 100 });
    const line = (stream: "stdout" | "stderr", partial: boolean, content: string, ns: bigint) => ({
      stream,
      partial,
      content,
      timeUnixNano: ns,
    });
    assert.equal(joiner.push(line("stdout", true, "ab", 1n)), undefined);
    assert.deepEqual(joiner.push(line("stderr", false, "err", 2n)), {
      timeUnixNano: 2n,
      stream: "stderr",
      content: "err",
      truncated: false,
    });
    assert.deepEqual(joiner.push(line("stdout", false, "cd", 3n)), {
      timeUnixNano: 1n,
      stream: "stdout",
      content: "abcd",
      truncated: false,
    });
    joiner.push(line("stdout", true, "0123456", 4n));
    joiner.push(line("stdout", true, "789abc", 5n));
    assert.deepEqual(joiner.push(line("stdout", false, "def", 6n)), {
      timeUnixNano: 4n,
      stream: "stdout",
      content: "0123456789",
      truncated: true,
    });
    const few = new PartialJoiner({ maxLineBytes: 100, maxPartialLines: 2 });
    few.push(line("stdout", true, "a", 1n));
    assert.equal(few.push(line("stdout", true, "b", 2n))?.content, "ab", "max_partial_lines delivers in parts");
  });

  it("fuzz: neither parser throws on any input", () => {
    for (let i = 0; i < 20_000; i++) {
      const text = randomBytes(randomInt(0, 80)).toString(i % 2 ? "latin1" : "utf8");
      parseCri(i % 3 === 0 ? `${T} stdout ${text}` : text);
      parseDocker(i % 3 === 0 ? `{"log":${JSON.stringify(text)},"stream":"stdout","time":"${text}"}` : `{${text}`);
    }
  });
});

interface Got {
  labels: Record<string, string>;
  line: string;
  ns: bigint;
}

function setup(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-pods-"));
  const root = join(dir, "pods");
  mkdirSync(root);
  const wal = Wal.open({
    dir: join(dir, "wal"),
    maxBytes: 64 << 20,
    segmentBytes: 1 << 20,
    fsync: "never",
    whenFull: "block",
  });
  const batcher = new Batcher({
    node: { id: "node-a", site: "", region: "" },
    wal,
    maxEntries: 10_000,
    maxBytes: 1 << 20,
    maxAgeMs: 5,
    maxBatchBytes: 3 << 20,
  });
  const config = configSchema().parse({
    collector: { kubernetes: { enabled: true, pods_root: root, partial_timeout_ms: 300, ...overrides } },
  }).collector.kubernetes;
  let registry = new Registry();
  const start = () =>
    startPodLogs({
      config,
      positionsFile: join(dir, "wal", "kubernetes-positions.json"),
      tenant: "fake",
      batcher,
      maxLineBytes: 1000,
      maxReadBytes: 1 << 20,
      pollMs: 20,
      syncMs: 50,
      rotateWaitMs: 200,
      registry: (registry = new Registry()),
      env,
    });
  const got = (): Got[] =>
    wal
      .read(1_000_000)
      .flatMap((r) =>
        decodeBatch(r.payload).streams.flatMap((s) =>
          s.entries.map((e) => ({ labels: { ...s.labels }, line: e.line, ns: e.timeUnixNano })),
        ),
      );
  const container = (namespace: string, pod: string, uid: string, name: string) => {
    const path = join(root, `${namespace}_${pod}_${uid}`, name);
    mkdirSync(path, { recursive: true });
    return path;
  };
  const metric = async (name: string) =>
    [...(await exposition(registry)).body.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  return { dir, root, wal, start, got, container, metric };
}

const cri = (i: number, stream: "stdout" | "stderr", tag: "F" | "P", content: string) =>
  `2024-05-01T10:00:${String(i % 60).padStart(2, "0")}.${String(i).padStart(9, "0")}Z ${stream} ${tag} ${content}\n`;

describe("Kubernetes pod logs", () => {
  it("a CRI and a Docker fixture tree: labels from the path, partial lines joined, rotation and a restart's new file, nothing lost or twice", async () => {
    const t = setup({ api: { enabled: "false" } });
    const web = t.container("shop", "web-7d9f-abcde", "0b1c2d3e-0000-4000-8000-000000000001", "nginx");
    const worker = t.container("jobs", "worker-0", "0b1c2d3e-0000-4000-8000-000000000002", "app");
    writeFileSync(
      join(web, "0.log"),
      cri(1, "stdout", "F", "GET / 200") +
        cri(2, "stdout", "P", "a very long ") +
        cri(3, "stderr", "F", "warning on stderr") +
        cri(4, "stdout", "P", "line split by ") +
        cri(5, "stdout", "F", "containerd"),
    );
    const docker = (log: string, stream: string, i: number) =>
      JSON.stringify({ log, stream, time: `2024-05-01T11:00:00.${String(i).padStart(9, "0")}Z` }) + "\n";
    writeFileSync(
      join(worker, "0.log"),
      docker("job started\n", "stdout", 1) +
        docker("16k piece one, ", "stderr", 2) +
        docker("piece two\n", "stderr", 3),
    );
    const pods = t.start();
    try {
      await waitFor("the first entries", () => t.got().length >= 5);
      const got = t.got();
      const of = (line: string) => got.find((g) => g.line === line);
      assert.deepEqual(of("GET / 200")?.labels, {
        namespace: "shop",
        pod: "web-7d9f-abcde",
        container: "nginx",
        stream: "stdout",
        node: "node-a",
      });
      assert.equal(of("GET / 200")?.ns, 1_714_557_601_000_000_001n, "the runtime's time");
      assert.equal(
        of("a very long line split by containerd")?.ns,
        1_714_557_602_000_000_002n,
        "joined, at its first piece's time",
      );
      assert.equal(of("warning on stderr")?.labels.stream, "stderr");
      assert.deepEqual(of("16k piece one, piece two")?.labels, {
        namespace: "jobs",
        pod: "worker-0",
        container: "app",
        stream: "stderr",
        node: "node-a",
      });
      assert.ok(of("job started"));

      // The kubelet rotates 0.log to 0.log.<time> mid-line (a P piece before, its F after), then the container
      // restarts and writes 1.log.
      appendFileSync(
        join(web, "0.log"),
        cri(6, "stdout", "F", "before rotation") + cri(7, "stdout", "P", "piece across "),
      );
      renameSync(join(web, "0.log"), join(web, "0.log.20240501-100007"));
      writeFileSync(join(web, "0.log"), cri(8, "stdout", "F", "after rotation"));
      appendFileSync(join(web, "0.log.20240501-100007"), cri(9, "stdout", "F", "the rotation"));
      writeFileSync(join(web, "1.log"), cri(10, "stdout", "F", "restarted"));
      // A piece whose end never comes is delivered as it is after partial_timeout_ms.
      appendFileSync(join(worker, "0.log"), docker("no end in sight", "stdout", 4));
      await waitFor("every entry", () => t.got().length >= 10, 20_000);
      const lines = t
        .got()
        .map((g) => g.line)
        .sort();
      assert.deepEqual(
        lines,
        [
          "16k piece one, piece two",
          "GET / 200",
          "a very long line split by containerd",
          "after rotation",
          "before rotation",
          "job started",
          "no end in sight",
          "piece across the rotation",
          "restarted",
          "warning on stderr",
        ].sort(),
        "each once",
      );
    } finally {
      await pods.stop();
    }
    // A restart reads from the saved positions: nothing again.
    const before = t.got().length;
    const again = t.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await again.stop();
    assert.equal(t.got().length, before);
  });

  it("pod labels and annotations from the API server (service account token, cluster CA), and the path alone while it is down", async () => {
    const pki = testPki();
    const serverCert = pki.issue("apiserver", { commonName: "kubernetes", ips: ["127.0.0.1"] });
    const tokenFile = join(pki.dir, "token");
    writeFileSync(tokenFile, "sa-token-1\n");
    const requests: string[] = [];
    const pod = (namespace: string, name: string, uid: string) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace,
        uid,
        labels: { "app.kubernetes.io/name": "checkout", "pod-template-hash": "7d9f", tier: "web" },
        annotations: { "team.example.com/owner": "payments", "kubectl.kubernetes.io/restartedAt": "2024-05-01" },
      },
      spec: { nodeName: "node-a", containers: [{ name: "nginx", image: "nginx:1.27" }] },
    });
    const fixture = pod("shop", "checkout-1", "0b1c2d3e-0000-4000-8000-00000000000a");
    assert.equal(await schemaError(fixture), null, "the stand-in answers a valid Pod");
    const server = createServer(
      { cert: readFileSync(serverCert.cert), key: readFileSync(serverCert.key) },
      (req: IncomingMessage, res: ServerResponse) => {
        requests.push(`${req.headers.authorization} ${req.url}`);
        if (req.url === "/api/v1/namespaces/shop/pods/checkout-1") {
          res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(fixture));
        } else
          res.writeHead(404, { "Content-Type": "application/json" }).end(JSON.stringify({ kind: "Status", code: 404 }));
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const t = setup(
      {
        pod_annotations: ["team.example.com/owner"],
        pod_labels: ["app.kubernetes.io/name", "tier"],
        api: { token_file: tokenFile, ca_file: pki.caCert },
      },
      { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(port) },
    );
    const pods = t.start();
    try {
      writeFileSync(
        join(t.container("shop", "checkout-1", "0b1c2d3e-0000-4000-8000-00000000000a", "nginx"), "0.log"),
        cri(1, "stdout", "F", "with pod labels"),
      );
      await waitFor("the first line", () => t.got().length >= 1);
      assert.deepEqual(t.got()[0]!.labels, {
        app_kubernetes_io_name: "checkout",
        tier: "web",
        team_example_com_owner: "payments",
        namespace: "shop",
        pod: "checkout-1",
        container: "nginx",
        stream: "stdout",
        node: "node-a",
      });
      assert.deepEqual(requests, ["Bearer sa-token-1 /api/v1/namespaces/shop/pods/checkout-1"]);
      // The API server goes away: a new pod's lines are still read, labelled from the path.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      writeFileSync(
        join(t.container("shop", "cart-2", "0b1c2d3e-0000-4000-8000-00000000000b", "app"), "0.log"),
        cri(2, "stdout", "F", "path alone"),
      );
      await waitFor("the second pod's line", () => t.got().length >= 2, 20_000);
      assert.deepEqual(t.got()[1]!.labels, {
        namespace: "shop",
        pod: "cart-2",
        container: "app",
        stream: "stdout",
        node: "node-a",
      });
      assert.equal(await t.metric("bifrost_collector_kubernetes_api_requests_total"), 2);
    } finally {
      await pods.stop();
      server.close();
    }
  });
});
