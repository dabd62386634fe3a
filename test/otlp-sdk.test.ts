import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { type AllInOne, startAllInOne, stopChild } from "./helpers/processes.js";
import { REPO_ROOT } from "./helpers/services.js";
import { until } from "./helpers/wait.js";

// Apps instrumented with the real OpenTelemetry SDKs (Python from PyPI, Node.js from npm) export to `bifrost all`
// with their stock exporters over gRPC and HTTP, cumulative and delta; what they sent is read back through the
// Prometheus API as a Grafana user would query it: names with Prometheus' suffixes, target_info, scope labels,
// delta series made cumulative, and type, help and unit in /api/v1/metadata.

const OTEL_PYTHON = join(
  process.env.BIFROST_CACHE ?? join(homedir(), ".cache", "bifrost"),
  "otel-python-1.45.2",
  "bin",
  "python",
);

async function installPythonSdk(): Promise<void> {
  if (existsSync(OTEL_PYTHON)) return;
  await promisify(execFile)("bash", [join(REPO_ROOT, "deploy/local/services.sh"), "install", "otel-python"]);
}

/** Runs an app to completion with only PATH and `env`; its output. */
function run(command: string, args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(output) : reject(new Error(`exit ${code}: ${output}`))));
  });
}

interface Sample {
  metric: Record<string, string>;
  values: [number, string][];
}

/** The series of `selector` over the last hour, each with its samples, `node` left out (Bifrost's own label). */
async function rangeOf(bifrost: AllInOne, selector: string): Promise<Sample[]> {
  const url = `${bifrost.query}/api/v1/query?${new URLSearchParams({ query: `${selector}[1h]` })}`;
  const body = (await (await fetch(url)).json()) as { status: string; data: { result: Sample[] } };
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data.result
    .map(({ metric, values }) => {
      const { node: _node, ...labels } = metric;
      return { metric: labels, values };
    })
    .sort((a, b) => JSON.stringify(a.metric).localeCompare(JSON.stringify(b.metric)));
}

function valuesOf(samples: Sample[]): string[][] {
  return samples.map((s) => s.values.map(([, value]) => value));
}

async function metadata(bifrost: AllInOne, metric: string): Promise<unknown> {
  const url = `${bifrost.query}/api/v1/metadata?${new URLSearchParams({ metric })}`;
  return ((await (await fetch(url)).json()) as { data: unknown }).data;
}

describe("OpenTelemetry SDKs into bifrost all, read back through the Prometheus API", () => {
  let bifrost: AllInOne;
  before(async () => {
    await installPythonSdk();
    bifrost = await startAllInOne();
  });
  after(() => stopChild(bifrost.child));

  const resource = "service.namespace=shop,service.instance.id=pod-1,deployment.environment.name=prod,host.name=edge-7";

  for (const protocol of ["grpc", "http/protobuf"] as const) {
    for (const temporality of ["cumulative", "delta"] as const) {
      it(`Python SDK over ${protocol}, ${temporality} temporality`, async () => {
        const service = `payments-${protocol.replace(/\W/g, "")}-${temporality}`;
        const job = `shop/${service}`;
        const printed = await run(OTEL_PYTHON, [join(REPO_ROOT, "test/helpers/otel_app.py")], {
          OTEL_EXPORTER_OTLP_ENDPOINT: protocol === "grpc" ? `http://${bifrost.otlpGrpc}` : bifrost.collector,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_EXPORTER_OTLP_INSECURE: "true",
          OTEL_SERVICE_NAME: service,
          OTEL_RESOURCE_ATTRIBUTES: resource,
          ...(temporality === "delta" ? { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "delta" } : {}),
        });
        assert.match(printed, /^ok,ok$/m, printed);
        // Two exports, then the one at shutdown: the up-down counter, cumulative under either preference, is in
        // all three; a cumulative exporter sends the unchanged counter and histogram again, a delta one does not.
        await until("the three exports in the store", async () => {
          const samples = await rangeOf(bifrost, `payment_queue_items{job="${job}"}`);
          return samples.length === 1 && samples[0]!.values.length === 3;
        });
        const exported = (first: string, second: string) =>
          temporality === "cumulative" ? [first, second, second] : [first, second];

        const scope = {
          otel_scope_name: "shop.payments",
          otel_scope_version: "2.0.1",
          otel_scope_schema_url: "https://opentelemetry.io/schemas/1.26.0",
        };
        const labels = { job, instance: "pod-1", ...scope };
        const payments = await rangeOf(bifrost, `payments_processed_total{job="${job}"}`);
        assert.deepEqual(
          payments.map((s) => s.metric),
          [{ __name__: "payments_processed_total", ...labels, payment_method: "card" }],
        );
        assert.deepEqual(valuesOf(payments), [exported("3", "7")], "the deltas 3 and 4 summed");
        const buckets = await rangeOf(bifrost, `payment_duration_seconds_bucket{job="${job}"}`);
        assert.deepEqual(
          buckets.map((s) => [s.metric["le"], s.values.map(([, v]) => v)]),
          [
            ["+Inf", exported("2", "3")],
            ["0.5", exported("1", "1")],
            ["1", exported("1", "2")],
          ],
        );
        assert.deepEqual(valuesOf(await rangeOf(bifrost, `payment_duration_seconds_count{job="${job}"}`)), [
          exported("2", "3"),
        ]);
        const sums = valuesOf(await rangeOf(bifrost, `payment_duration_seconds_sum{job="${job}"}`))[0]!;
        assert.deepEqual(
          sums.map((sum) => Number(sum).toFixed(9)),
          exported("1.700000000", "2.400000000"),
        );
        assert.deepEqual(valuesOf(await rangeOf(bifrost, `payment_queue_items{job="${job}"}`)), [["4", "3", "3"]]);

        const targetInfo = await rangeOf(bifrost, `target_info{job="${job}"}`);
        assert.equal(targetInfo.length, 1);
        const { telemetry_sdk_version: sdkVersion, ...info } = targetInfo[0]!.metric;
        assert.deepEqual(info, {
          __name__: "target_info",
          job,
          instance: "pod-1",
          deployment_environment_name: "prod",
          host_name: "edge-7",
          telemetry_sdk_language: "python",
          telemetry_sdk_name: "opentelemetry",
        });
        assert.equal(sdkVersion, "1.45.2");
        assert.ok(targetInfo[0]!.values.every(([, value]) => value === "1"));

        assert.deepEqual(await metadata(bifrost, "payments_processed_total"), {
          payments_processed_total: [{ type: "counter", help: "Payments processed", unit: "" }],
        });
        assert.deepEqual(await metadata(bifrost, "payment_duration_seconds"), {
          payment_duration_seconds: [{ type: "histogram", help: "Time to settle a payment", unit: "seconds" }],
        });
        assert.deepEqual(await metadata(bifrost, "target_info"), {
          target_info: [{ type: "gauge", help: "Target metadata", unit: "" }],
        });
        // Every family once under its own name, a histogram's series not as families of their own; sorted keys,
        // `limit` families and `limit_per_metric` entries each.
        const all = (await metadata(bifrost, "")) as Record<string, unknown[]>;
        assert.ok("payment_queue_items" in all && "payment_duration_seconds" in all);
        for (const part of ["_bucket", "_sum", "_count"]) assert.ok(!(`payment_duration_seconds${part}` in all), part);
        assert.deepEqual(Object.keys(all), Object.keys(all).sort());
        const url = `${bifrost.query}/api/v1/metadata?limit=2&limit_per_metric=1`;
        const limited = ((await (await fetch(url)).json()) as { data: Record<string, unknown[]> }).data;
        assert.deepEqual(Object.keys(limited), Object.keys(all).slice(0, 2));
        assert.ok(Object.values(limited).every((entries) => entries.length === 1));
      });
    }
  }

  for (const protocol of ["grpc", "http/protobuf"] as const) {
    it(`Node.js SDK over ${protocol}, delta temporality`, async () => {
      const service = `checkout-${protocol.replace(/\W/g, "")}-delta`;
      await run(process.execPath, [join(REPO_ROOT, "dist", "test", "helpers", "otel-app.js")], {
        OTEL_EXPORTER_OTLP_ENDPOINT: protocol === "grpc" ? `http://${bifrost.otlpGrpc}` : bifrost.collector,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "delta",
        OTEL_METRIC_EXPORT_INTERVAL: "600000",
        OTEL_TRACES_EXPORTER: "none",
        OTEL_NODE_RESOURCE_DETECTORS: "env",
        OTEL_SERVICE_NAME: service,
        OTEL_APP_EXPORTS: "2",
      });
      await until("the second export in the store", async () => {
        const samples = await rangeOf(bifrost, `orders_placed_total{job="${service}"}`);
        return samples.length === 1 && samples[0]!.values.length === 2;
      });
      const orders = await rangeOf(bifrost, `orders_placed_total{job="${service}"}`);
      assert.deepEqual(orders[0]!.metric, {
        __name__: "orders_placed_total",
        job: service,
        payment_method: "card",
        otel_scope_name: "checkout",
        otel_scope_version: "1.2.3",
      });
      assert.deepEqual(valuesOf(orders), [["3", "5"]], "the deltas 3 and 2 summed");
      assert.deepEqual(valuesOf(await rangeOf(bifrost, `checkout_duration_milliseconds_count{job="${service}"}`)), [
        ["2", "3"],
      ]);
      assert.deepEqual(
        (await rangeOf(bifrost, `checkout_duration_milliseconds_bucket{job="${service}"}`)).map((s) => [
          s.metric["le"],
          s.values.map(([, v]) => v),
        ]),
        [
          ["+Inf", ["2", "3"]],
          ["10", ["1", "1"]],
          ["100", ["1", "2"]],
        ],
      );
      const targetInfo = await rangeOf(bifrost, `target_info{job="${service}"}`);
      assert.equal(targetInfo[0]?.metric["telemetry_sdk_language"], "nodejs");
      // `ms` is named and kept as its Prometheus word; an annotation such as `{order}` is no unit.
      assert.deepEqual(await metadata(bifrost, "checkout_duration_milliseconds"), {
        checkout_duration_milliseconds: [
          { type: "histogram", help: "Time from cart to payment", unit: "milliseconds" },
        ],
      });
      assert.deepEqual(await metadata(bifrost, "orders_placed_total"), {
        orders_placed_total: [{ type: "counter", help: "Orders placed", unit: "" }],
      });
    });
  }
});
