import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../common/config.js";
import { loadConfig } from "../config.js";
import { REPO_ROOT } from "./helpers/services.js";

const dir = mkdtempSync(join(tmpdir(), "bifrost-config-"));
let files = 0;
function file(text: string): string {
  const path = join(dir, `config-${files++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail("expected a ConfigError");
}

describe("configuration", () => {
  it("has working defaults with no file", () => {
    const config = loadConfig({ env: {} });
    assert.deepEqual(config.kafka.brokers, ["127.0.0.1:9092"]);
    assert.equal(config.clickhouse.url, "http://127.0.0.1:8123");
    assert.equal(config.query.listen, "127.0.0.1:3100");
    assert.equal(config.log.level, "info");
  });

  it("reads YAML and fills in what the file leaves out", () => {
    const config = loadConfig({
      file: file("kafka:\n  brokers: [k1:9092, k2:9092]\n  topic: edge\nlog:\n  level: debug\n"),
      env: {},
    });
    assert.deepEqual(config.kafka.brokers, ["k1:9092", "k2:9092"]);
    assert.equal(config.kafka.topic, "edge");
    assert.equal(config.kafka.client_id, "bifrost");
    assert.equal(config.log.level, "debug");
  });

  it("lets BIFROST_<SECTION>__<KEY> override the file, with strings, numbers, booleans and lists", () => {
    const config = loadConfig({
      file: file("kafka:\n  topic: from-file\n"),
      env: {
        BIFROST_KAFKA__TOPIC: "from-env",
        BIFROST_KAFKA__BROKERS: "a:1, b:2",
        BIFROST_KAFKA__TLS__ENABLED: "true",
        BIFROST_CLICKHOUSE__PASSWORD: "12345",
        BIFROST_TELEMETRY__EXPORT_INTERVAL_MS: "5000",
        BIFROST_CACHE: "/not/config",
      },
    });
    assert.equal(config.kafka.topic, "from-env");
    assert.deepEqual(config.kafka.brokers, ["a:1", "b:2"]);
    assert.equal(config.kafka.tls.enabled, true);
    assert.equal(config.clickhouse.password, "12345");
    assert.equal(config.telemetry.export_interval_ms, 5000);
  });

  it("expands ${VAR} and ${VAR:-default} in the file", () => {
    const config = loadConfig({
      file: file("clickhouse:\n  password: ${CH_PASSWORD}\n  database: ${CH_DB:-fallback}\n"),
      env: { CH_PASSWORD: "s3cret" },
    });
    assert.equal(config.clickhouse.password, "s3cret");
    assert.equal(config.clickhouse.database, "fallback");
    assert.match(
      problemsOf(() => loadConfig({ file: file("node:\n  id: ${NODE_ID}\n"), env: {} }))[0]!,
      /NODE_ID.*not set/,
    );
    // $${ keeps a Prometheus relabel template such as ${name} from the expansion.
    const relabeled = loadConfig({
      file: file(
        "collector:\n  scrape:\n    scrape_configs:\n      - job_name: j\n        relabel_configs:\n" +
          "          - source_labels: [a]\n            regex: (?P<name>.*)\n            target_label: b\n" +
          "            replacement: $${name}-${SUFFIX}\n",
      ),
      env: { SUFFIX: "x" },
    });
    assert.equal(relabeled.collector.scrape.scrape_configs[0]!.relabel_configs[0]!.replacement, "${name}-x");
  });

  it("names the bad key and why", () => {
    const problems = problemsOf(() =>
      loadConfig({
        file: file("kafka:\n  brokers: [nohost]\n  tpoic: x\nlog:\n  level: loud\n"),
        env: {},
      }),
    );
    assert.ok(
      problems.some((p) => p.startsWith("kafka.brokers[0]: expected host:port")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("kafka: unknown key tpoic")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("log.level:")),
      problems.join("\n"),
    );
  });

  it("says which environment variable set a bad value", () => {
    const problems = problemsOf(() => loadConfig({ env: { BIFROST_TELEMETRY__EXPORT_INTERVAL_MS: "soon" } }));
    assert.match(problems[0]!, /^telemetry\.export_interval_ms: .*\(set by BIFROST_TELEMETRY__EXPORT_INTERVAL_MS\)$/);
    assert.match(problemsOf(() => loadConfig({ env: { BIFROST_NOPE__X: "1" } }))[0]!, /unknown key nope/);
  });

  it("rejects malformed YAML, duplicate keys and a non-mapping top level", () => {
    assert.ok(problemsOf(() => loadConfig({ file: file("kafka: [unclosed\n"), env: {} })).length > 0);
    assert.match(
      problemsOf(() => loadConfig({ file: file("log:\n  level: info\nlog:\n  level: debug\n"), env: {} }))[0]!,
      /unique|duplicate/i,
    );
    assert.match(problemsOf(() => loadConfig({ file: file("- a\n- b\n"), env: {} }))[0]!, /mapping/);
    assert.match(problemsOf(() => loadConfig({ file: join(dir, "missing.yaml"), env: {} }))[0]!, /cannot read/);
  });

  it("reads the collector's file and host metric inputs, checking regular expressions and label names", () => {
    const config = loadConfig({
      file: file(
        [
          "collector:",
          "  files:",
          "    - paths: [/var/log/app/*.log]",
          "      labels: {job: app}",
          "      multiline: {start_pattern: '^\\d{4}-'}",
          "  host_metrics:",
          "    enabled: true",
          "    processes:",
          "      - {name: nginx, match: {comm: nginx}}",
          "",
        ].join("\n"),
      ),
      env: {},
    });
    const [source] = config.collector.files;
    assert.deepEqual(source, {
      paths: ["/var/log/app/*.log"],
      exclude: [],
      labels: { job: "app" },
      multiline: { start_pattern: "^\\d{4}-", max_lines: 128, timeout_ms: 3000 },
      encoding: "utf8",
    });
    assert.equal(config.collector.host_metrics.interval_ms, 15000);
    assert.deepEqual(config.collector.host_metrics.mount_points, ["/"]);
    const problems = problemsOf(() =>
      loadConfig({
        file: file(
          "collector:\n  files:\n    - paths: [a.log]\n      labels: {bad-name: x}\n      multiline: {start_pattern: '(unclosed'}\n  host_metrics:\n    processes: [{name: x, match: {}}]\n",
        ),
        env: {},
      }),
    );
    assert.ok(
      problems.some(
        (p) => p.startsWith("collector.files[0].labels.bad-name:") || p.startsWith("collector.files[0].labels:"),
      ),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith("collector.files[0].multiline.start_pattern: expected a valid regular expression"),
      ),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith("collector.host_metrics.processes[0].match: expected comm, cmdline or pidfile"),
      ),
      problems.join("\n"),
    );
  });

  it("ignores environment paths that would reach object prototypes", () => {
    const config = loadConfig({
      env: { BIFROST_CONSTRUCTOR__PROTOTYPE__POLLUTED: "yes", BIFROST_LOG__CONSTRUCTOR: "x" },
    });
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
    assert.equal(config.log.level, "info");
  });

  it("reads notifier receivers with Alertmanager's defaults and checks them", () => {
    const config = loadConfig({
      file: file(
        "query:\n  notifier:\n    receivers:\n      - name: pager\n        url: https://hooks.example/page\n        matchers: { severity: page|critical }\n",
      ),
      env: { BIFROST_QUERY__NOTIFIER__ALERTMANAGERS: "http://am-1:9093, http://am-2:9093" },
    });
    const [pager] = config.query.notifier.receivers;
    assert.equal(pager!.group_wait_ms, 30_000);
    assert.equal(pager!.group_interval_ms, 300_000);
    assert.equal(pager!.repeat_interval_ms, 14_400_000);
    assert.equal(pager!.send_resolved, true);
    assert.deepEqual(pager!.group_by, []);
    assert.deepEqual(config.query.notifier.alertmanagers, ["http://am-1:9093", "http://am-2:9093"]);
    const problems = problemsOf(() =>
      loadConfig({
        file: file(
          "query:\n  notifier:\n    receivers:\n      - { name: a, url: http://x/, group_by: [..., job], matchers: { job: '(' } }\n      - { name: a, url: http://y/, hmac_secret: short }\n",
        ),
        env: {},
      }),
    );
    assert.ok(
      problems.some((p) => p.startsWith("query.notifier.receivers[0].group_by") && p.includes("stands alone")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some(
        (p) => p.startsWith("query.notifier.receivers[0].matchers.job") && p.includes("regular expression"),
      ),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("query.notifier.receivers[1].hmac_secret")),
      problems.join("\n"),
    );
  });

  it("documents every key in the configuration reference", () => {
    const reference = readFileSync(join(REPO_ROOT, "docs", "configuration.md"), "utf8");
    const withOptional = loadConfig({
      env: {
        BIFROST_KAFKA__SASL__MECHANISM: "plain",
        BIFROST_KAFKA__SASL__USERNAME: "u",
        BIFROST_KAFKA__SASL__PASSWORD: "p",
      },
    });
    const keys: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        for (const [key, child] of Object.entries(value)) walk(child, path ? `${path}.${key}` : key);
      } else keys.push(path);
    };
    walk(withOptional, "");
    for (const optional of ["ca_file", "cert_file", "key_file"])
      keys.push(`kafka.tls.${optional}`, `clickhouse.tls.${optional}`);
    const undocumented = keys.filter((key) => !reference.includes(`\`${key}\``));
    assert.deepEqual(undocumented, []);
  });
});
