import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { output, runBifrost } from "./helpers/processes.js";

// `bifrost <role> --check-config` loads the rule files as the ruler will, and fails as `promtool check rules`
// does: non-zero, naming the file, the position, the group, the rule and the reason.

const dir = mkdtempSync(join(tmpdir(), "bifrost-check-rules-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

const good = file("good.yaml", [
  "groups:",
  "  - name: ok",
  "    rules:",
  "      - record: up:sum",
  "        expr: sum(up)",
]);

describe("bifrost --check-config with rule files", () => {
  it("refuses an unparsable expression, naming file, line, group, rule and reason", async () => {
    const bad = file("bad.yaml", [
      "groups:",
      "  - name: api",
      "    rules:",
      "      - record: up:sum",
      "        expr: sum(up)",
      "      - alert: HighErrors",
      "        expr: sum(rate(http_errors_total[5m]) > 1",
    ]);
    const { code, stdout, stderr } = await output(
      runBifrost(["query", "--check-config"], { BIFROST_QUERY__RULER__RULE_FILES: `${good},${bad}` }),
    );
    assert.equal(code, 2, stderr);
    assert.equal(stdout, "");
    assert.match(stderr, /invalid rule files:/);
    assert.ok(stderr.includes(`${bad}:7:15: group "api", rule 2: HighErrors: could not parse expression`), stderr);
    assert.ok(!stderr.includes(good), stderr);
  });

  it("refuses a missing rule file and a bad rules_dir file, for `all` too", async () => {
    const rulesDir = join(dir, "rules");
    mkdirSync(rulesDir);
    file("rules/t1.yaml", ["groups:", "  - name: g", "    rules:", "      - recrd: x", "        expr: up"]);
    const { code, stderr } = await output(
      runBifrost(["all", "--check-config"], {
        BIFROST_QUERY__RULER__RULE_FILES: join(dir, "missing.yaml"),
        BIFROST_QUERY__RULER__RULES_DIR: rulesDir,
      }),
    );
    assert.equal(code, 2, stderr);
    assert.match(stderr, /missing\.yaml: ENOENT/);
    assert.ok(stderr.includes(`${join(rulesDir, "t1.yaml")}:4:9: group "g", rule 1:`), stderr);
  });

  it("passes good rule files and prints the configuration; other roles do not read rules", async () => {
    const ok = await output(runBifrost(["query", "--check-config"], { BIFROST_QUERY__RULER__RULE_FILES: good }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual((JSON.parse(ok.stdout) as { query: { ruler: { rule_files: string[] } } }).query.ruler.rule_files, [
      good,
    ]);
    const collector = await output(
      runBifrost(["collector", "--check-config"], { BIFROST_QUERY__RULER__RULE_FILES: join(dir, "missing.yaml") }),
    );
    assert.equal(collector.code, 0, collector.stderr);
  });
});
