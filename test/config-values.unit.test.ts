import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError } from "../common/config.js";
import { loadConfig } from "../config.js";

// Durations and sizes written as in Prometheus's and Loki's configurations, problems named with the file's line,
// and the key meant for an unknown one.

const dir = mkdtempSync(join(tmpdir(), "bifrost-config-values-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
function file(lines: string[]): string {
  const path = join(dir, `config-${files++}.yaml`);
  writeFileSync(path, lines.join("\n") + "\n");
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

describe("configuration values", () => {
  it("reads durations and sizes with units in the file", () => {
    const config = loadConfig({
      env: {},
      file: file([
        "collector:",
        "  batch:",
        "    max_age_ms: 1h30m",
        "    max_bytes: 512MB",
        "  wal:",
        "    max_bytes: 1GiB",
        "  limits:",
        "    max_line_bytes: 10KiB",
        "query:",
        "  ruler:",
        "    evaluation_interval_ms: 15s",
        "    outage_tolerance_ms: 1d",
        "  notifier:",
        "    backoff_ms: 250ms",
        "    max_backoff_ms: 1.5m",
        "telemetry:",
        "  export_interval_ms: 30000",
      ]),
    });
    assert.equal(config.collector.batch.max_age_ms, 5_400_000);
    assert.equal(config.collector.batch.max_bytes, 512_000_000);
    assert.equal(config.collector.wal.max_bytes, 1024 ** 3);
    assert.equal(config.collector.limits.max_line_bytes, 10_240);
    assert.equal(config.query.ruler.evaluation_interval_ms, 15_000);
    assert.equal(config.query.ruler.outage_tolerance_ms, 86_400_000);
    assert.equal(config.query.notifier.backoff_ms, 250);
    assert.equal(config.query.notifier.max_backoff_ms, 90_000);
    assert.equal(config.telemetry.export_interval_ms, 30_000);
  });

  it("reads them from BIFROST_ variables too, plain integers as before", () => {
    const config = loadConfig({
      env: {
        BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "5m",
        BIFROST_COLLECTOR__BATCH__MAX_BYTES: "64KiB",
        BIFROST_COLLECTOR__WAL__MAX_BYTES: "2097152",
        BIFROST_QUERY__LIMITS__QUERY_TIMEOUT_MS: "45000",
        BIFROST_OVERRIDES__T1__QUERY_TIMEOUT_MS: "2m",
      },
    });
    assert.equal(config.collector.batch.max_age_ms, 300_000);
    assert.equal(config.collector.batch.max_bytes, 65_536);
    assert.equal(config.collector.wal.max_bytes, 2_097_152);
    assert.equal(config.query.limits.query_timeout_ms, 45_000);
    assert.equal(config.overrides["t1"]!.query_timeout_ms, 120_000);
  });

  it("refuses a bad duration or size, naming the key, the reason and the file's line", () => {
    const path = file([
      "collector:",
      "  batch:",
      "    max_entries: 10",
      "    max_age_ms: soon",
      "  limits:",
      "    max_line_bytes: 12 parsecs",
      "query:",
      "  ruler:",
      "    evaluation_interval_ms: 100us",
    ]);
    const problems = problemsOf(() => loadConfig({ env: {}, file: path }));
    assert.equal(problems.length, 3, problems.join("\n"));
    assert.match(
      problems[0]!,
      /^collector\.batch\.max_age_ms: expected a duration such as 15s, 5m or 1h30m, or milliseconds \(not a valid duration string: "soon"\)/,
    );
    assert.ok(problems[0]!.endsWith(`(${path}:4:17)`), problems[0]);
    assert.match(
      problems[1]!,
      /^collector\.limits\.max_line_bytes: expected a size such as 512MB.*unhandled size name: parsecs/,
    );
    assert.ok(problems[1]!.endsWith(`(${path}:6:21)`), problems[1]);
    // 100 µs is 0.1 ms, not a whole number of milliseconds.
    assert.match(problems[2]!, /^query\.ruler\.evaluation_interval_ms: .*int/i);
    assert.ok(problems[2]!.endsWith(`(${path}:9:29)`), problems[2]);
  });

  it("names the variable rather than a line for a value from the environment", () => {
    const problems = problemsOf(() =>
      loadConfig({
        env: { BIFROST_COLLECTOR__BATCH__MAX_AGE_MS: "5 minutes" },
        file: file(["collector:", "  batch:", "    max_age_ms: 5s"]),
      }),
    );
    assert.match(
      problems[0]!,
      /^collector\.batch\.max_age_ms: expected a duration.*\(set by BIFROST_COLLECTOR__BATCH__MAX_AGE_MS\)$/,
    );
  });

  it("suggests the key meant for an unknown one, with its line", () => {
    const path = file([
      "kafka:",
      "  brokers: [127.0.0.1:9092]",
      "collector:",
      "  batch:",
      "    max_age: 5s",
      "query:",
      "  limits:",
      "    max_query_seires: 10",
      "  max_age_ms: 5s",
      "telemetry:",
      "  colour: blue",
    ]);
    // Reported in the order of the schema's sections.
    const problems = problemsOf(() => loadConfig({ env: {}, file: path }));
    assert.deepEqual(problems, [
      `telemetry: unknown key colour (${path}:11:3)`,
      `collector.batch: unknown key max_age (did you mean \`collector.batch.max_age_ms\`?) (${path}:5:5)`,
      `query.limits: unknown key max_query_seires (did you mean \`query.limits.max_query_series\`?) (${path}:8:5)`,
      // At the wrong level: the one key of that name elsewhere.
      `query: unknown key max_age_ms (did you mean \`collector.batch.max_age_ms\`?) (${path}:9:3)`,
    ]);
  });

  it("suggests keys inside lists and maps from the item's schema", () => {
    const path = file([
      "query:",
      "  notifier:",
      "    receivers:",
      "      - name: ops",
      "        url: http://127.0.0.1:9/hook",
      "        group_wait: 10s",
      "overrides:",
      "  t1:",
      "    query_timeout: 1m",
    ]);
    const problems = problemsOf(() => loadConfig({ env: {}, file: path }));
    assert.deepEqual(problems, [
      `query.notifier.receivers[0]: unknown key group_wait (did you mean \`query.notifier.receivers[0].group_wait_ms\`?) (${path}:6:9)`,
      `overrides.t1: unknown key query_timeout (did you mean \`overrides.t1.query_timeout_ms\`?) (${path}:9:5)`,
    ]);
  });
});
