import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { type ClientTls, loadClientTls, post, type PostResult } from "../common/http-client.js";
import { encodeBatch } from "../proto/codec.js";
import { BATCHES_PATH, FRAMES_CONTENT_TYPE, joinFrames } from "../proto/frames.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { until } from "./helpers/aggregation.js";
import { makeBatch } from "./helpers/batches.js";
import { testPki, type TestPki } from "./helpers/certs.js";
import { runBifrost, stopChild, waitForReady } from "./helpers/processes.js";
import { CLICKHOUSE_URL, freePort, startChdbHttp, uniqueName } from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

// The HTTP transport as separate processes over mutual TLS with tokens: Loki push -> `bifrost collector`
// (disk buffer, shipper) -> POST /bifrost/v1/batches -> `bifrost aggregator` -> ClickHouse.

const SHOP_TOKEN = "shop-token-0123456789abcdef";
const OTHER_TOKEN = "other-token-0123456789abcdef";
const NODE = "edge-1";

/** The sum of a metric's series whose labels contain `labels`; over https with a client certificate when `tls` is given. */
async function metric(url: string, name: string, labels = "", tls?: ClientTls): Promise<number> {
  const text = tls ? await getText(`${url}/metrics`, tls) : await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] === name && (match[2] ?? "").includes(labels)) total += Number(match[3]);
  }
  return total;
}

function getText(url: string, tls: ClientTls): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, tls, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

describe("HTTP transport: collector -> aggregator -> ClickHouse", () => {
  let pki: TestPki;
  let dir: string;
  let aggregatorTls: Record<string, string>;
  let edge1: ClientTls;
  let edge2: ClientTls;

  before(() => {
    pki = testPki();
    dir = mkdtempSync(join(tmpdir(), "bifrost-http-transport-"));
    const server = pki.issue("aggregator", { commonName: "aggregator.bifrost.test", ips: ["127.0.0.1"] });
    aggregatorTls = { enabled: "true", cert_file: server.cert, key_file: server.key, client_ca_file: pki.caCert };
    const one = pki.issue("edge-1", { commonName: NODE });
    const two = pki.issue("edge-2", { commonName: "edge-2", uris: ["spiffe://fleet.test/node/edge-2"] });
    edge1 = loadClientTls({ ca_file: pki.caCert, cert_file: one.cert, key_file: one.key });
    edge2 = loadClientTls({ ca_file: pki.caCert, cert_file: two.cert, key_file: two.key });
  });

  /** An aggregator fed only over HTTP, with auth and mutual TLS, writing to `clickhouse`/`database`. */
  function aggregatorEnv(port: number, clickhouse: string, database: string): Record<string, string> {
    return {
      BIFROST_LOG__LEVEL: "warn",
      BIFROST_AUTH__ENABLED: "true",
      BIFROST_AUTH__TENANTS__SHOP__TOKENS: SHOP_TOKEN,
      BIFROST_AUTH__TENANTS__OTHER__TOKENS: OTHER_TOKEN,
      BIFROST_STORAGE__ENGINE: "clickhouse",
      BIFROST_CLICKHOUSE__URL: clickhouse,
      BIFROST_CLICKHOUSE__DATABASE: database,
      BIFROST_AGGREGATOR__LISTEN: `127.0.0.1:${port}`,
      BIFROST_AGGREGATOR__CONSUME_KAFKA: "false",
      BIFROST_AGGREGATOR__HTTP_INGEST__ENABLED: "true",
      BIFROST_AGGREGATOR__DEAD_LETTER_DIR: join(dir, `dead-letters-${database}`),
      ...Object.fromEntries(
        Object.entries(aggregatorTls).map(([k, v]) => [`BIFROST_AGGREGATOR__TLS__${k.toUpperCase()}`, v]),
      ),
    };
  }

  async function startAggregator(env: Record<string, string>): Promise<ChildProcess> {
    const child = runBifrost(["aggregator"], env);
    child.stdout!.resume();
    child.stderr!.resume();
    const port = env.BIFROST_AGGREGATOR__LISTEN!.split(":")[1];
    // /ready over TLS needs the CA; the listener's readiness is the store's, polled by a frame-less POST.
    await until(
      "the aggregator ready",
      async () => {
        assert.equal(child.exitCode, null, "the aggregator exited");
        const answer = await postFrames(`https://127.0.0.1:${port}`, [], SHOP_TOKEN, edge1).catch(() => undefined);
        return answer?.status === 204;
      },
      60_000,
    );
    return child;
  }

  /** A collector with node id edge-1 shipping over HTTP with its certificate and the shop token. */
  function httpCollectorEnv(
    aggregatorUrl: string,
    port: number,
    grpcPort: number,
    wal: string,
  ): Record<string, string> {
    return {
      BIFROST_LOG__LEVEL: "warn",
      BIFROST_NODE__ID: NODE,
      BIFROST_COLLECTOR__LISTEN: `127.0.0.1:${port}`,
      BIFROST_COLLECTOR__OTLP__GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
      BIFROST_COLLECTOR__WAL__DIR: wal,
      BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "100",
      BIFROST_COLLECTOR__SHIPPER__TRANSPORT: "http",
      BIFROST_COLLECTOR__SHIPPER__HTTP__URL: aggregatorUrl,
      BIFROST_COLLECTOR__SHIPPER__HTTP__AUTH_TOKEN: SHOP_TOKEN,
      BIFROST_COLLECTOR__SHIPPER__HTTP__TLS__CA_FILE: pki.caCert,
      BIFROST_COLLECTOR__SHIPPER__HTTP__TLS__CERT_FILE: join(pki.dir, "edge-1.pem"),
      BIFROST_COLLECTOR__SHIPPER__HTTP__TLS__KEY_FILE: join(pki.dir, "edge-1.key"),
    };
  }

  function postFrames(url: string, frames: Uint8Array[], token: string, tls: ClientTls): Promise<PostResult> {
    return post(`${url}${BATCHES_PATH}`, joinFrames(frames), {
      headers: { "Content-Type": FRAMES_CONTENT_TYPE, Authorization: `Bearer ${token}` },
      timeoutMs: 30_000,
      tls,
    });
  }

  it("stores every pushed entry once, survives replays and an aggregator outage, and refuses strangers", async () => {
    const database = uniqueName("http_transport");
    const [aggregatorPort, collectorPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
    const aggregatorUrl = `https://127.0.0.1:${aggregatorPort}`;
    const collectorUrl = `http://127.0.0.1:${collectorPort}`;
    const wal = join(dir, "wal");
    const collectorEnv = httpCollectorEnv(aggregatorUrl, collectorPort, grpcPort, wal);
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database,
      retention: TEST_RETENTION,
    });
    const processes: ChildProcess[] = [];
    const startCollector = async () => {
      const child = runBifrost(["collector"], collectorEnv);
      child.stdout!.resume();
      child.stderr!.resume();
      processes.push(child);
      await waitForReady(`${collectorUrl}/ready`, child, 200, 60_000);
      return child;
    };
    let sent = 0;
    const push = async (requests: number) => {
      for (let request = 0; request < requests; request++) {
        const values = Array.from({ length: 50 }, (_, i) => [String(T0_NS + BigInt(sent + i)), `line ${sent + i}`]);
        const response = await fetch(`${collectorUrl}/loki/api/v1/push`, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-Scope-OrgID": "shop" },
          body: JSON.stringify({ streams: [{ stream: { app: "checkout" }, values }] }),
        });
        assert.equal(response.status, 204, await response.text());
        sent += values.length;
      }
    };
    const range = { startNs: T0_NS - 1n, endNs: T0_NS + 1_000_000n };
    const stored = async () => {
      const streams = await store.selectLogs({
        tenant: "shop",
        matchers: [{ name: "app", op: "=", value: "checkout" }],
        ...range,
        limit: 100_000,
        direction: "forward",
      });
      return streams.flatMap((s) =>
        s.entries.map((e) => ({ labels: { ...s.labels }, ns: e.timeUnixNano, line: e.line })),
      );
    };
    const expected = () =>
      Array.from({ length: sent }, (_, i) => ({
        // `service_name` from `app`, as Loki's discover_service_name adds it.
        labels: { app: "checkout", node: NODE, service_name: "checkout" },
        ns: T0_NS + BigInt(i),
        line: `line ${i}`,
      }));

    let aggregator = await startAggregator(aggregatorEnv(aggregatorPort, CLICKHOUSE_URL, database));
    processes.push(aggregator);
    try {
      let collector = await startCollector();
      await push(10);
      await until("every pushed entry stored", async () => (await stored()).length >= sent, 90_000);
      assert.deepEqual(await stored(), expected());
      const written = await metric(collectorUrl, "bifrost_collector_batches_written_total");
      assert.ok(written > 0);

      // Replay: the collector forgets what it shipped and sends its whole disk buffer again.
      await stopChild(collector);
      writeFileSync(join(wal, "cursor"), "0\n");
      collector = await startCollector();
      await until(
        "the disk buffer shipped again",
        async () => (await metric(collectorUrl, "bifrost_collector_batches_shipped_total")) >= written,
        60_000,
      );
      assert.deepEqual(await stored(), expected());
      assert.equal(await metric(aggregatorUrl, "bifrost_aggregator_duplicate_batches_total", "", edge1), written);

      // Outage: the aggregator is away while more is pushed; the collector buffers and retries.
      await stopChild(aggregator);
      await push(10);
      await until(
        "the collector retrying",
        async () => (await metric(collectorUrl, "bifrost_collector_ship_retries_total")) >= 2,
        60_000,
      );
      assert.ok((await stored()).length < sent);
      aggregator = await startAggregator(aggregatorEnv(aggregatorPort, CLICKHOUSE_URL, database));
      processes.push(aggregator);
      await until(
        "the buffered entries stored after the restart",
        async () => (await stored()).length >= sent,
        120_000,
      );
      assert.deepEqual(await stored(), expected());

      // Strangers: a wrong token, another tenant's token, another node's certificate; nothing of theirs is stored.
      const frame = encodeBatch(
        makeBatch({ tenant: "shop", nodeId: NODE, sequence: 9_999, startNs: T0_NS + 500_000n, streams: 1, series: 0 }),
      );
      const wrongToken = await postFrames(aggregatorUrl, [frame], "not-a-token-0123456789", edge1);
      assert.equal(wrongToken.status, 401, wrongToken.text);
      const otherTenant = await postFrames(aggregatorUrl, [frame], OTHER_TOKEN, edge1);
      assert.equal(otherTenant.status, 403, otherTenant.text);
      assert.match(otherTenant.text, /of tenant shop; the token is other's/);
      const otherNode = await postFrames(aggregatorUrl, [frame], SHOP_TOKEN, edge2);
      assert.equal(otherNode.status, 403, otherNode.text);
      assert.match(otherNode.text, /of node edge-1, not the client certificate's/);
      await assert.rejects(
        postFrames(aggregatorUrl, [frame], SHOP_TOKEN, { ca: edge1.ca! }),
        /certificate|socket hang up|ECONNRESET/i,
      );

      // A frame that does not decode goes to the dead letters with its reason, as it came; the request's other
      // frames are stored, and the collector is answered 204 (nothing of it is left to retry).
      const corrupt = Buffer.from(frame);
      corrupt[corrupt.length - 1]! ^= 0xff;
      const bad = await postFrames(aggregatorUrl, [frame, corrupt], SHOP_TOKEN, edge1);
      assert.equal(bad.status, 204, bad.text);
      const letters = readFileSync(join(dir, `dead-letters-${database}`, "batches.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { reason: string; source: string; frame: string });
      assert.deepEqual(
        letters.map((l) => [l.reason, l.source, l.frame]),
        [["crc_mismatch", "http edge-1 frame 1", corrupt.toString("base64")]],
      );
      assert.deepEqual(await stored(), expected());
      const good = await store.selectLogs({
        tenant: "shop",
        matchers: [{ name: "service", op: "=", value: "svc-0" }],
        startNs: 0n,
        endNs: 2n ** 62n,
        limit: 1000,
        direction: "forward",
      });
      assert.equal(
        good.reduce((n, s) => n + s.entries.length, 0),
        10,
        "the good frame beside it is stored",
      );
      assert.equal(
        await metric(aggregatorUrl, "bifrost_aggregator_dead_letters_total", `reason="crc_mismatch"`, edge1),
        1,
      );
      for (const reason of ["tenant_mismatch", "node_mismatch"]) {
        assert.equal(
          await metric(aggregatorUrl, "bifrost_aggregator_http_refused_total", `reason="${reason}"`, edge1),
          1,
          reason,
        );
      }
    } finally {
      for (const child of processes) await stopChild(child);
      await store.close();
    }
  });

  it("answers 503 with Retry-After while the store is down, which the collector waits out; stores the batches once, after it is back", async () => {
    const chdb = await startChdbHttp();
    const database = uniqueName("http_transport_down");
    const aggregatorPort = await freePort();
    const aggregatorUrl = `https://127.0.0.1:${aggregatorPort}`;
    const aggregator = await startAggregator(aggregatorEnv(aggregatorPort, chdb.url, database));
    let restarted: Awaited<ReturnType<typeof startChdbHttp>> | undefined;
    let collector: ChildProcess | undefined;
    try {
      const port = Number(new URL(chdb.url).port);
      await chdb.stop();
      const frame = encodeBatch(
        makeBatch({
          tenant: "shop",
          nodeId: NODE,
          sequence: 9_000,
          startNs: T0_NS,
          streams: 2,
          entriesPerStream: 5,
          series: 0,
        }),
      );
      const refused = await postFrames(aggregatorUrl, [frame], SHOP_TOKEN, edge1);
      assert.equal(refused.status, 503, refused.text);
      assert.equal(refused.retryAfter, "5");
      // A collector told so waits at least that long, whatever its backoff would have drawn.
      const [collectorPort, grpcPort] = [await freePort(), await freePort()];
      collector = runBifrost(
        ["collector"],
        httpCollectorEnv(aggregatorUrl, collectorPort, grpcPort, join(dir, "wal-store-down")),
      );
      let logs = "";
      collector.stdout!.on("data", (chunk: Buffer) => (logs += chunk.toString()));
      collector.stderr!.resume();
      await waitForReady(`http://127.0.0.1:${collectorPort}/ready`, collector, 200, 60_000);
      const pushed = await fetch(`http://127.0.0.1:${collectorPort}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": "shop" },
        body: JSON.stringify({ streams: [{ stream: { app: "patient" }, values: [[String(T0_NS), "waited"]] }] }),
      });
      assert.equal(pushed.status, 204);
      const failures = () =>
        logs
          .split("\n")
          .filter((l) => l.includes("delivery failed"))
          .map((l) => JSON.parse(l) as { err: string; delay_ms: number });
      await until("the collector refused by the aggregator", () => failures().length > 0, 60_000);
      assert.match(failures()[0]!.err, /^the aggregator answered 503: store unavailable/);
      assert.ok(failures()[0]!.delay_ms >= 5000, JSON.stringify(failures()[0]));
      restarted = await startChdbHttp([], port, chdb.dataDir);
      const store = new ClickHouseStore({
        url: chdb.url,
        username: "default",
        password: "",
        database,
        retention: TEST_RETENTION,
      });
      try {
        await until(
          "the frame accepted once the store is back",
          async () => (await postFrames(aggregatorUrl, [frame], SHOP_TOKEN, edge1)).status === 204,
          60_000,
        );
        const again = await postFrames(aggregatorUrl, [frame], SHOP_TOKEN, edge1);
        assert.equal(again.status, 204);
        const entries = async () => {
          const streams = await store.selectLogs({
            tenant: "shop",
            matchers: [],
            startNs: T0_NS - 1n,
            endNs: T0_NS + 10_000_000_000_000n,
            limit: 1000,
            direction: "forward",
          });
          return streams.reduce((n, s) => n + s.entries.length, 0);
        };
        await until("the collector's buffered entry stored", async () => (await entries()) === 11, 90_000);
        assert.equal(await entries(), 11);
      } finally {
        await store.close();
      }
    } finally {
      if (collector) await stopChild(collector);
      await stopChild(aggregator);
      await restarted?.stop();
    }
  });
});
