import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Store } from "../storage/store.js";
import { drilldownStreams } from "./helpers/drilldown-data.js";
import { LOKI_DRILLDOWN_ANSWERS } from "./helpers/drilldown-loki-answers.js";
import { onBothStores, startLokiHttp, type LokiHttp } from "./helpers/loki-http.js";
import { T0_MS, T0_NS } from "./helpers/store-contract.js";

// Grafana Logs Drilldown's requests (issue 16 items 1, 5, 7) against the answers a real Grafana Loki gave on the same
// push (test/helpers/drilldown-loki-answers.ts): detected fields and their values, detected labels, patterns,
// categorized labels, series and label values of `{}`; the Loki 3 ingestion defaults (service_name, detected_level)
// that these depend on come from Bifrost's push route here as they came from Loki's distributor there.

const SEC = 1_000_000_000n;
const RANGE = `start=${T0_NS}&end=${T0_NS + 900n * SEC}`;

/** A recorded request with its parameters URL-encoded and `${RANGE}` filled in. */
function requestPath(recorded: string): string {
  const [route, query] = recorded.replace("${RANGE}", RANGE).split("?") as [string, string];
  const params = new URLSearchParams();
  for (const pair of query.split("&")) {
    const at = pair.indexOf("=");
    params.append(pair.slice(0, at), pair.slice(at + 1));
  }
  return `${route}?${params.toString()}`;
}

/** Times in an answer made relative to t0, as the recorded answers hold them. */
function relativeTimes(path: string, body: unknown): unknown {
  if (path.startsWith("/loki/api/v1/patterns")) {
    const patterns = (body as { data: { samples: [number, number][] }[] }).data;
    for (const pattern of patterns) pattern.samples = pattern.samples.map(([ts, n]) => [ts - T0_MS / 1000, n]);
  }
  if (path.startsWith("/loki/api/v1/query_range")) {
    const data = (body as { data: { result: { values: [string, ...unknown[]][] }[]; stats?: unknown } }).data;
    delete data.stats;
    for (const stream of data.result) for (const entry of stream.values) entry[0] = String(BigInt(entry[0]) - T0_NS);
  }
  return body;
}

/** Lists of labels, fields, values and series, and keys, in a canonical order: Loki gives them in map order. */
function unordered(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(unordered);
    const sortable = items.every((item) => typeof item === "string" || (typeof item === "object" && item !== null));
    return sortable ? items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) : items;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([key, item]) => [key, unordered(item)]));
  }
  return value;
}

function drilldownSuite(name: string, open: () => Promise<Store>): void {
  describe(`Logs Drilldown endpoints on ${name}`, () => {
    let store: Store;
    let api: LokiHttp;
    const streams = drilldownStreams(T0_NS);

    before(async () => {
      store = await open();
      api = await startLokiHttp(store);
      const response = await fetch(`${api.base}/loki/api/v1/push`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Scope-OrgID": "acme" },
        body: JSON.stringify({ streams }),
      });
      assert.equal(response.status, 204, await response.text());
    });
    after(async () => {
      await api.close();
      await store.close();
    });

    for (const recorded of LOKI_DRILLDOWN_ANSWERS) {
      const flags = Object.keys(recorded.headers).length > 0 ? ` (${JSON.stringify(recorded.headers)})` : "";
      it(`answers ${recorded.path}${flags} as Loki does`, async () => {
        const response = await fetch(`${api.base}${requestPath(recorded.path)}`, {
          headers: { "X-Scope-OrgID": "acme", ...recorded.headers },
        });
        const text = await response.text();
        assert.equal(response.status, recorded.status, text);
        const got = relativeTimes(recorded.path, JSON.parse(text));
        // Patterns and log lines come in Loki's order; the rest are sets that Loki lists in map order.
        const ordered = /\/(patterns|query_range)\?/.test(recorded.path);
        if (ordered) assert.deepEqual(got, recorded.body);
        else assert.deepEqual(unordered(got), unordered(recorded.body));
      });
    }

    it("answers index/volume with Loki's groups, largest first, in bytes of log lines", async () => {
      // Loki estimates volumes from its chunks' sizes (prorated to the range); Bifrost counts the lines' bytes.
      const lineBytes = new Map(
        streams.map(({ stream, values }) => [
          stream,
          values.reduce((sum, [, line]) => sum + Buffer.byteLength(line), 0),
        ]),
      );
      const bytesWhere = (match: (labels: Record<string, string>) => boolean) =>
        [...lineBytes].filter(([labels]) => match(labels)).reduce((sum, [, bytes]) => sum + bytes, 0);
      const volume = async (params: string) =>
        (await api.data(`/loki/api/v1/index/volume?${RANGE}&${params}`)) as {
          resultType: string;
          result: { metric: Record<string, string>; value: [number, string] }[];
        };
      const end = Number(T0_NS / 1_000_000n) / 1000 + 900;

      const byService = await volume(`query=${encodeURIComponent('{env=~".+"}')}&targetLabels=service_name`);
      assert.equal(byService.resultType, "vector");
      const service = (labels: Record<string, string>) =>
        labels.service_name ?? labels.app ?? labels.job ?? labels.container;
      // Loki's groups for this request, as it answered them.
      const services = ["api", "nginx", "checkout", "worker", "web"];
      assert.deepEqual(
        byService.result,
        services
          .map((name) => ({
            metric: { service_name: name },
            value: [end, String(bytesWhere((labels) => labels.env !== undefined && service(labels) === name))],
          }))
          .sort((a, b) => Number(b.value[1]) - Number(a.value[1])),
      );

      const byLabel = await volume(`query=${encodeURIComponent('{env=~".+"}')}&aggregateBy=labels`);
      assert.deepEqual(
        byLabel.result.map((row) => row.metric),
        [
          { env: "" },
          { service_name: "" },
          { app: "" },
          { cluster: "" },
          { job: "" },
          { namespace: "" },
          { container: "" },
          { level: "" },
        ],
      );
      assert.equal(byLabel.result[0]!.value[1], String(bytesWhere((labels) => labels.env !== undefined)));

      // `{}` is every stream, each its own group with all its labels (service_name added at ingestion).
      const everything = await volume(`query=${encodeURIComponent("{}")}`);
      assert.deepEqual(
        everything.result.map((row) => row.metric),
        [
          { app: "api", cluster: "c1", env: "prod", service_name: "api" },
          { env: "dev", job: "nginx", service_name: "nginx" },
          { env: "prod", namespace: "shop", service_name: "checkout" },
          { container: "worker", env: "dev", service_name: "worker" },
          { foo: "bar", service_name: "unknown_service" },
          { app: "web", env: "dev", level: "warn", service_name: "web" },
        ],
      );
    });

    it("answers volumes from the per-minute rollup as exactly as from the lines, whatever the range", async () => {
      // Grouped by the label `env`: the streams without it count in no group.
      const entries = streams
        .filter(({ stream }) => stream.env !== undefined)
        .flatMap(({ values }) => values.map(([ts, line]) => ({ ts: BigInt(ts), bytes: Buffer.byteLength(line) })));
      const bytesIn = (from: bigint, to: bigint) =>
        entries.filter(({ ts }) => ts >= from && ts <= to).reduce((sum, { bytes }) => sum + bytes, 0);
      const everything = encodeURIComponent('{service_name=~".+"}');
      // Part minutes at both ends, whole minutes between.
      const from = T0_NS + 45n * SEC + 500_000_000n;
      const to = T0_NS + 617n * SEC + 1n;
      const instant = (await api.data(
        `/loki/api/v1/index/volume?query=${everything}&start=${from}&end=${to}&targetLabels=env&aggregateBy=labels`,
      )) as { result: { value: [number, string] }[] };
      assert.deepEqual(
        instant.result.map((row) => Number(row.value[1])),
        [bytesIn(from, to)],
      );
      // As Loki splits volume_range: buckets end on multiples of the step, each stamped a millisecond before
      // it, and the last ends at the request's end. Minute steps: every whole minute from the rollup; 90 s steps
      // cut minutes: every bucket from lines.
      for (const [step, start] of [
        [60n, T0_NS],
        [120n, from],
        [90n, T0_NS],
        [90n, from],
      ] as const) {
        const ranged = (await api.data(
          `/loki/api/v1/index/volume_range?query=${everything}&start=${start}&end=${to}&step=${step}&targetLabels=env&aggregateBy=labels`,
        )) as { result: { values: [number, string][] }[] };
        const stepNs = step * SEC;
        const lastKey = ((to - 1n) / stepNs) * stepNs;
        const expected: [number, string][] = [];
        for (let key = (start / stepNs) * stepNs; key <= lastKey; key += stepNs) {
          const end = key === lastKey ? to : key + stepNs - 1_000_000n;
          const bytes = bytesIn(key < start ? start : key, key === lastKey ? to : key + stepNs - 1n);
          if (bytes > 0) expected.push([Number(end / 1_000_000n) / 1000, String(bytes)]);
        }
        assert.ok(expected.length > 2);
        assert.deepEqual(ranged.result[0]!.values, expected, `step ${step} from ${start}`);
      }
      // The rollup agrees with counting the lines, stream by stream.
      const select = { tenant: "acme", matchers: [{ name: "env", op: "=~" as const, value: ".+" }] };
      const rollup = await store.logVolume({ ...select, startMs: T0_MS, endMs: T0_MS + 900_000, stepMs: 300_000 });
      const lines = await store.countLogs({
        ...select,
        startNs: T0_NS,
        endNs: T0_NS + 900n * SEC,
        stepNs: 300n * SEC,
      });
      assert.deepEqual(rollup, lines);
      assert.equal(rollup.length, 5);
    });

    it("answers index/stats with the streams, entries and bytes of the selector, and no chunks", async () => {
      const stats = await api.get(`/loki/api/v1/index/stats?${RANGE}&query=${encodeURIComponent('{env="prod"}')}`);
      assert.equal(stats.status, 200, stats.text);
      const prod = streams.filter(({ stream }) => stream.env === "prod");
      assert.deepEqual(stats.body, {
        streams: 2,
        chunks: 0,
        bytes: prod.reduce(
          (sum, { values }) => sum + values.reduce((n, [, line]) => n + Buffer.byteLength(line), 0),
          0,
        ),
        entries: prod.reduce((sum, { values }) => sum + values.length, 0),
      });
    });

    it("counts the lines and bytes a log query read in stats.summary", async () => {
      const got = (await api.data(
        `/loki/api/v1/query_range?query=${encodeURIComponent('{foo="bar"}')}&${RANGE}&limit=1000`,
      )) as { stats: { summary: Record<string, number> } };
      const plain = streams.find(({ stream }) => stream.foo === "bar")!.values;
      const summary = got.stats.summary;
      assert.equal(summary.totalLinesProcessed, plain.length);
      assert.equal(summary.totalEntriesReturned, plain.length);
      // The lines and their structured metadata (detected_level=unknown on each), as Loki sums them.
      const metadata = Buffer.byteLength("detected_levelunknown") * plain.length;
      assert.equal(summary.totalStructuredMetadataBytesProcessed, metadata);
      assert.equal(
        summary.totalBytesProcessed,
        plain.reduce((n, [, line]) => n + Buffer.byteLength(line), 0) + metadata,
      );
    });

    it("reports what Drilldown reads from drilldown-limits", async () => {
      const got = await api.get("/loki/api/v1/drilldown-limits");
      assert.equal(got.status, 200, got.text);
      const body = got.body as { limits: Record<string, unknown>; pattern_ingester_enabled: boolean; version: string };
      assert.equal(body.pattern_ingester_enabled, true);
      assert.equal(body.limits.volume_enabled, true);
      assert.equal(body.limits.discover_log_levels, true);
      // Loki's defaults, as its drilldown-limits lists them.
      assert.deepEqual(body.limits.discover_service_name, [
        "service",
        "app",
        "application",
        "app_name",
        "name",
        "app_kubernetes_io_name",
        "container",
        "container_name",
        "k8s_container_name",
        "component",
        "workload",
        "job",
        "k8s_job_name",
      ]);
      assert.equal(typeof body.version, "string");
    });

    it("refuses what Loki refuses", async () => {
      const metric = await api.get(
        `/loki/api/v1/detected_fields?${RANGE}&query=${encodeURIComponent('count_over_time({env="prod"}[1m])')}`,
      );
      assert.equal(metric.status, 400, metric.text);
      assert.equal(metric.text.trim(), "only log selector is supported");
      const noQuery = await api.get(`/loki/api/v1/patterns?${RANGE}`);
      assert.equal(noQuery.status, 400, noQuery.text);
      const badLimit = await api.get(
        `/loki/api/v1/detected_fields?${RANGE}&query=${encodeURIComponent('{foo="bar"}')}&line_limit=0`,
      );
      assert.equal(badLimit.status, 400, badLimit.text);
      assert.equal(badLimit.text.trim(), "limit must be a positive value");
    });
  });
}

onBothStores("drilldown", drilldownSuite);
