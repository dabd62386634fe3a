import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileRelabelConfigs, relabel, relabelConfigSchema } from "../collector/processing/relabel.js";
import { goLower, goUpper } from "../common/go/case.js";
import { compileGoRegexp, RegexSyntaxError } from "../common/regex.js";
import { labelsOf } from "../proto/labels.js";

// Prometheus relabeling (collector/processing/relabel.ts) on its own: every action, Go's template expansion, RE2
// syntax and anchoring, and the configurations Prometheus refuses at load. test/scrape-prometheus.test.ts checks
// the same rules against Debian's Prometheus.

const parse = (rules: unknown[]) => compileRelabelConfigs(rules.map((r) => relabelConfigSchema().parse(r)));
const run = (labels: Record<string, string>, rules: unknown[]) => {
  const out = relabel(labelsOf(Object.entries(labels)), parse(rules));
  return out === null ? null : { ...out };
};
const problem = (rule: unknown) => {
  const result = relabelConfigSchema().safeParse(rule);
  return result.success ? undefined : result.error.issues.map((i) => i.message).join("; ");
};

describe("relabel_configs", () => {
  it("replace: anchored regex, groups by number and name, Go's $name rules, the default regex and replacement", () => {
    const labels = { __address__: "host-1.example:9100", job: "node" };
    assert.deepEqual(
      run(labels, [
        { source_labels: ["__address__"], regex: "([^.]+)\\..*", target_label: "host" },
        {
          source_labels: ["__address__"],
          regex: "(?P<h>[^-]+)-(?P<n>\\d+).*",
          target_label: "n",
          replacement: "${n}${h}",
        },
        // `$1x` names the group "1x", which does not exist: nothing; `$$` is a dollar; `$` before a non-name stays.
        { source_labels: ["job"], target_label: "odd", replacement: "$1x|$$|${1}x|$-" },
        // Anchored: `node` does not match `od`.
        { source_labels: ["job"], regex: "od", target_label: "never", replacement: "x" },
        // The default regex (.*) and replacement $1 copy the joined values.
        { source_labels: ["job", "host"], separator: "/", target_label: "joined" },
      ]),
      {
        __address__: "host-1.example:9100",
        job: "node",
        host: "host-1",
        n: "1host",
        odd: "|$|nodex|$-",
        joined: "node/host-1",
      },
    );
  });

  it("replace: a target label templated from the input, an invalid target left alone, an empty result deletes", () => {
    assert.deepEqual(
      run({ a: "team_x", b: "1" }, [
        { source_labels: ["a"], regex: "(\\w+)_(\\w+)", target_label: "${1}_name", replacement: "$2" },
        { source_labels: ["b"], regex: "(.*)", target_label: "${1}bad", replacement: "v" },
        { source_labels: ["missing"], regex: "", target_label: "b", replacement: "" },
      ]),
      { a: "team_x", team_name: "x" },
    );
  });

  it("keep, drop, keepequal, dropequal", () => {
    const labels = { job: "node", a: "1", b: "1", c: "2" };
    assert.deepEqual(run(labels, [{ source_labels: ["job"], regex: "no.*", action: "keep" }]), labels);
    assert.equal(run(labels, [{ source_labels: ["job"], regex: "no", action: "keep" }]), null);
    assert.equal(run(labels, [{ source_labels: ["job"], regex: "node|x", action: "drop" }]), null);
    assert.deepEqual(run(labels, [{ source_labels: ["missing"], regex: ".+", action: "drop" }]), labels);
    assert.deepEqual(run(labels, [{ source_labels: ["a"], target_label: "b", action: "keepequal" }]), labels);
    assert.equal(run(labels, [{ source_labels: ["a"], target_label: "c", action: "keepequal" }]), null);
    assert.equal(run(labels, [{ source_labels: ["a"], target_label: "b", action: "dropequal" }]), null);
    assert.deepEqual(run(labels, [{ source_labels: ["a"], target_label: "c", action: "DropEqual" }]), labels);
  });

  it("labelmap, labeldrop, labelkeep on label names", () => {
    const labels = { __meta_sd_label_app: "api", __meta_sd_label_team: "core", job: "x", tmp_a: "1", tmp_b: "2" };
    assert.deepEqual(
      run(labels, [
        { regex: "__meta_sd_label_(.+)", action: "labelmap", replacement: "k8s_$1" },
        { regex: "tmp_.*", action: "labeldrop" },
      ]),
      { __meta_sd_label_app: "api", __meta_sd_label_team: "core", job: "x", k8s_app: "api", k8s_team: "core" },
    );
    assert.deepEqual(run(labels, [{ regex: "job|tmp_a", action: "labelkeep" }]), { job: "x", tmp_a: "1" });
  });

  it("lowercase and uppercase as Go maps each character; hashmod sets the modulus", () => {
    assert.deepEqual(
      run({ a: "MiXed-ΣΑΣ-İ", b: "straße ᾳ" }, [
        { source_labels: ["a"], target_label: "lower", action: "lowercase" },
        { source_labels: ["b"], target_label: "upper", action: "uppercase" },
        { source_labels: ["a"], target_label: "shard", modulus: 8, action: "hashmod" },
      ])?.lower,
      "mixed-σασ-i",
    );
    assert.equal(goUpper("straße ᾳ"), "STRAßE ᾼ");
    assert.equal(goLower("ΣΑΣ"), "σασ");
    const shard = run({ a: "x" }, [{ source_labels: ["a"], target_label: "shard", modulus: 8, action: "hashmod" }]);
    assert.match(shard!.shard!, /^[0-7]$/);
  });

  it("refuses what Prometheus refuses at load", () => {
    assert.match(problem({ action: "hashmod", target_label: "x" })!, /non-zero modulus/);
    assert.match(problem({ action: "replace" })!, /requires 'target_label'/);
    assert.match(problem({ action: "replace", target_label: "1bad" })!, /invalid 'target_label'/);
    assert.match(problem({ action: "lowercase", target_label: "${1}" })!, /invalid 'target_label'/);
    assert.match(
      problem({ action: "uppercase", target_label: "x", replacement: "y" })!,
      /'replacement' can not be set/,
    );
    assert.match(problem({ action: "labeldrop", regex: "a", source_labels: ["b"] })!, /requires only 'regex'/);
    assert.match(problem({ action: "keepequal", target_label: "x", regex: "a" })!, /requires only 'source_labels'/);
    assert.match(problem({ action: "labelmap", replacement: "-$1" })!, /invalid 'replacement'/);
    assert.match(problem({ action: "nonsense" })!, /Invalid option/);
    assert.match(problem({ regex: "(a", target_label: "x" })!, /invalid regular expression/);
    assert.match(problem({ source_labels: ["bad-name"], target_label: "x" })!, /label name/);
    assert.equal(problem({ action: "labelmap", regex: "a_(.*)", replacement: "${1}_b" }), undefined);
  });
});

describe("RE2", () => {
  it("reads Go's syntax: (?P<name>), flags inside, POSIX classes, \\pL, \\Q..\\E; no backreferences", () => {
    assert.ok(compileGoRegexp("(?P<x>a)(?i)B", true).test("ab"));
    assert.ok(compileGoRegexp("[[:alpha:]]+\\pL\\Q.*\\E", true).test("abé.*"));
    assert.ok(!compileGoRegexp("a", true).test("ab"));
    assert.ok(!compileGoRegexp("a.b", true).test("a\nb"), "`.` does not match a newline without (?s)");
    assert.throws(() => compileGoRegexp("(a)\\1"), RegexSyntaxError);
    assert.throws(() => compileGoRegexp("a{1001}"), RegexSyntaxError);
  });

  it("matches in linear time where a backtracking engine would not finish", () => {
    const re = compileGoRegexp("(a+)+$", true);
    const input = `${"a".repeat(50_000)}!`;
    assert.equal(re.test(input), false);
  });
});
