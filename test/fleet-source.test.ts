import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { Registry } from "prom-client";
import { createLogger } from "../common/log.js";
import { Renderer } from "../fleet/render.js";
import { parseRevision, readSourceFiles, type Revision, SourceError } from "../fleet/source.js";
import { SourceWatcher } from "../fleet/source-watcher.js";
import { waveOrder } from "../fleet/rollout.js";

// The GitOps source: what a directory of base, fragments and rollout declaration means, every problem reported
// as file:line:column, the merge deterministic, and a bad file keeping the last good revision in force.

const collector = (labels: Record<string, string>) => ({ agentType: "bifrost-collector", labels });

function problems(files: Record<string, string>): string[] {
  try {
    parseRevision(files);
  } catch (err) {
    if (err instanceof SourceError) return err.problems;
    throw err;
  }
  assert.fail("expected problems");
}

describe("fleet source", () => {
  const base = "collector:\n  batch:\n    max_entries: 1000\n  limits:\n    max_labels: 20\n";

  it("lays matching fragments over the base in priority order, the name breaking ties", () => {
    const revision = parseRevision({
      "base.yaml": base,
      "sites/eu.yaml":
        "selector: { region: eu-west }\npriority: 10\nconfig:\n  collector:\n    batch: { max_entries: 2000 }\n",
      "sites/arm.yaml":
        "selector: { arch: [arm64, arm32] }\npriority: 10\nconfig:\n  collector:\n    batch: { max_entries: 3000, max_age_ms: 500 }\n",
      "gold.yaml": "selector: { tier: gold }\npriority: 20\nconfig:\n  collector:\n    limits: null\n",
    });
    const renderer = new Renderer();
    const eu = renderer.render(revision, collector({ region: "eu-west", arch: "amd64" }))!;
    assert.deepEqual(parse(eu.body.toString()), {
      collector: { batch: { max_entries: 2000 }, limits: { max_labels: 20 } },
    });
    assert.deepEqual(eu.fragments, ["sites/eu.yaml"]);
    // Same priority: sites/arm.yaml sorts before sites/eu.yaml, so eu's value is laid over arm's.
    const both = renderer.render(revision, collector({ region: "eu-west", arch: "arm64", tier: "gold" }))!;
    assert.deepEqual(both.fragments, ["sites/arm.yaml", "sites/eu.yaml", "gold.yaml"]);
    assert.deepEqual(parse(both.body.toString()), { collector: { batch: { max_entries: 2000, max_age_ms: 500 } } });
    const none = renderer.render(revision, collector({ region: "us-east" }))!;
    assert.deepEqual(parse(none.body.toString()), parse(base));
  });

  it("gives the same document and hash whatever order the files write their keys in", () => {
    const a = parseRevision({
      "base.yaml": "collector:\n  batch: { max_entries: 5, max_age_ms: 9 }\nkafka: { topic: t }\n",
    });
    const b = parseRevision({
      "base.yaml": "kafka: { topic: t }\ncollector:\n  batch: { max_age_ms: 9, max_entries: 5 }\n",
    });
    const renderer = new Renderer();
    assert.notEqual(a.id, b.id, "different files are different revisions");
    assert.equal(renderer.render(a, collector({}))!.hash, renderer.render(b, collector({}))!.hash);
  });

  it("reads a rollout declaration and ends it at 100%", () => {
    const revision = parseRevision({
      "base.yaml": base,
      "rollout.yaml":
        "waves:\n  - { percent: 1 }\n  - { selector: { site: store-042 }, soak_ms: 100 }\n  - { percent: 50 }\nsoak_ms: 60000\ngates: { restarts: 2 }\n",
    });
    assert.deepEqual(revision.rollout.waves, [
      { percent: 1 },
      { selector: { site: "store-042" }, soak_ms: 100 },
      { percent: 50 },
      { percent: 100 },
    ]);
    assert.equal(revision.rollout.soakMs, 60_000);
    assert.equal(revision.rollout.gates.restarts, 2);
    assert.equal(revision.rollout.gates.failed_applies, 0);
  });

  it("reads soak and apply times written as durations, as the collector's configuration does", () => {
    const revision = parseRevision({
      "base.yaml": base,
      "rollout.yaml": "waves:\n  - { percent: 10, soak_ms: 90s }\nsoak_ms: 10m\napply_timeout_ms: 1h30m\n",
    });
    assert.deepEqual(revision.rollout.waves[0], { percent: 10, soak_ms: 90_000 });
    assert.equal(revision.rollout.soakMs, 600_000);
    assert.equal(revision.rollout.applyTimeoutMs, 5_400_000);
    assert.ok(
      problems({ "base.yaml": base, "rollout.yaml": "waves:\n  - { percent: 10 }\nsoak_ms: soon\n" }).some((p) =>
        /^rollout\.yaml:3:10: soak_ms: expected a duration/.test(p),
      ),
    );
  });

  it("reports every problem at its file, line and column", () => {
    const found = problems({
      "base.yaml": "collector:\n  batch:\n    max_entries: -1\n",
      "typo.yaml": "selector: {}\nconfig:\n  collector:\n    limitz: { max_labels: 3 }\n",
      "local.yaml": "config:\n  node: { id: other }\n  collector:\n    fleet: { url: 'ws://evil:4320' }\n",
      "query.yaml": "config:\n  query: { listen: '0.0.0.0:1' }\n",
      "broken.yaml": "selector: [\n",
      "rollout.yaml": "waves:\n  - { percent: 50 }\n  - { percent: 10 }\nextra: 1\n",
    });
    const has = (pattern: RegExp) =>
      assert.ok(
        found.some((p) => pattern.test(p)),
        `${pattern} in\n${found.join("\n")}`,
      );
    has(/^base\.yaml:3:18: collector\.batch\.max_entries: /);
    has(/^typo\.yaml:4:5: collector\.limitz: unknown key limitz/);
    has(/^local\.yaml:2:3: node: a remote configuration may set only collector, kafka, log, overrides/);
    has(/^local\.yaml:4:5: collector\.fleet: only the node's own configuration file may set this/);
    has(/^query\.yaml:2:3: query: a remote configuration may set only/);
    has(/^broken\.yaml:2:1: /);
    has(/^rollout\.yaml:4:1: extra: unknown key extra/);
    has(/^rollout\.yaml:2:3: waves: wave percentages are cumulative/);
  });

  it("keeps configurations for other agent types apart, as JSON, unchecked by the collector's schema", () => {
    const revision = parseRevision({
      "base.yaml": base,
      "python.yaml": "agent_type: checkout-service\nconfig:\n  sampler: { ratio: 0.1 }\n",
    });
    const renderer = new Renderer();
    const python = renderer.render(revision, { agentType: "checkout-service", labels: {} })!;
    assert.equal(python.contentType, "application/json");
    assert.deepEqual(JSON.parse(python.body.toString()), { sampler: { ratio: 0.1 } });
    assert.equal(renderer.render(revision, { agentType: "other", labels: {} }), undefined);
  });

  it("orders percentage waves by a hash of the revision, not by node name", () => {
    const uids = Array.from({ length: 50 }, (_, i) => `uid-${i}`);
    const order = waveOrder("r1", uids);
    assert.deepEqual([...order].sort(), [...uids].sort());
    assert.deepEqual(waveOrder("r1", [...uids].reverse()), order);
    assert.notDeepEqual(waveOrder("r2", uids), order);
  });

  describe("watched directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-fleet-source-"));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("takes a changed directory, keeps the last good revision while a file is bad, and says why", async () => {
      mkdirSync(join(dir, ".git"));
      writeFileSync(join(dir, ".git", "HEAD"), "0123456789abcdef0123456789abcdef01234567\n");
      writeFileSync(join(dir, ".git", "ignored.yaml"), "not: [valid\n");
      writeFileSync(join(dir, "base.yaml"), base);
      const taken: Revision[] = [];
      const registry = new Registry();
      const watcher = new SourceWatcher({
        dir,
        pollMs: 60_000,
        registry,
        log: createLogger("silent"),
        onRevision: async (r) => {
          taken.push(r);
        },
      });
      await watcher.start(undefined);
      try {
        assert.equal(taken.length, 1);
        assert.equal(taken[0]!.commit, "0123456789abcdef0123456789abcdef01234567");
        assert.deepEqual(Object.keys(readSourceFiles(dir)), ["base.yaml"]);
        writeFileSync(join(dir, "bad.yaml"), "config:\n  collector:\n    batch: { max_entries: many }\n");
        await watcher.poll();
        assert.equal(taken.length, 1, "the bad revision is not taken");
        assert.equal(watcher.revision?.id, taken[0]!.id);
        assert.match(watcher.readiness() ?? "", /bad\.yaml:3:27: collector\.batch\.max_entries/);
        assert.match(await registry.metrics(), /bifrost_fleet_source_problems 1/);
        await watcher.poll();
        assert.equal(taken.length, 1, "the same contents are not read again");
        writeFileSync(join(dir, "bad.yaml"), "config:\n  collector:\n    batch: { max_entries: 7 }\n");
        await watcher.poll();
        assert.equal(taken.length, 2);
        assert.equal(watcher.readiness(), null);
        assert.match(await registry.metrics(), /bifrost_fleet_source_problems 0/);
        assert.match(await registry.metrics(), /bifrost_fleet_source_reloads_total\{result="failed"\} 1/);
      } finally {
        await watcher.stop();
      }
    });
  });
});
