import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseRuleFile } from "../query/ruler/rules.js";
import { REPO_ROOT } from "./helpers/services.js";

// Every rule file we ship loads in Bifrost's ruler, and those whose expressions are all PromQL (no LogQL, no
// anomaly rules) pass `promtool check rules`, so they also work in Prometheus.

const RULES_DIR = join(REPO_ROOT, "deploy", "rules");
const files = readdirSync(RULES_DIR)
  .filter((name) => /\.ya?ml$/.test(name))
  .map((name) => join(RULES_DIR, name));

function isPromqlOnly(file: string): boolean {
  const groups = parseRuleFile(file, readFileSync(file, "utf8"), 60_000);
  return groups.every((group) =>
    group.rules.every((rule) => rule.type !== "anomaly" && rule.expr.language === "promql"),
  );
}

describe("shipped rule files", () => {
  it("load in Bifrost's ruler without a problem", () => {
    assert.ok(files.length >= 4, files.join(", "));
    for (const file of files) assert.doesNotThrow(() => parseRuleFile(file, readFileSync(file, "utf8"), 60_000), file);
  });

  it("pass `promtool check rules` when their expressions are PromQL", (t) => {
    const promql = files.filter(isPromqlOnly);
    assert.deepEqual(promql.map((f) => f.slice(RULES_DIR.length + 1)).sort(), ["bifrost.yaml", "node.yaml"]);
    const probe = spawnSync("promtool", ["--version"]);
    if (probe.error !== undefined) return t.skip("promtool is not installed (deploy/local/services.sh install)");
    const result = spawnSync("promtool", ["check", "rules", ...promql], { encoding: "utf8" });
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS/);
  });

  it("are refused by promtool when they use Bifrost's extensions, so the split above is real", (t) => {
    const probe = spawnSync("promtool", ["--version"]);
    if (probe.error !== undefined) return t.skip("promtool is not installed");
    const result = spawnSync("promtool", ["check", "rules", join(RULES_DIR, "anomalies.yaml")], { encoding: "utf8" });
    assert.notEqual(result.status, 0);
  });
});
