import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { loadConfig } from "../config.js";
import { referenceSections, renderConfigReference } from "../deploy/docs/config-reference.js";
import { REPO_ROOT } from "./helpers/services.js";

const DOCS = join(REPO_ROOT, "docs");

describe("configuration reference", () => {
  it("docs/configuration.md is what the schema renders today", () => {
    assert.equal(
      readFileSync(join(DOCS, "configuration.md"), "utf8"),
      renderConfigReference(),
      "docs/configuration.md is stale: npm run -s docs:config > docs/configuration.md",
    );
  });

  it("npm run docs:config prints it", () => {
    const result = spawnSync(process.execPath, [join(REPO_ROOT, "dist/deploy/docs/print-config-reference.js")], {
      encoding: "utf8",
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, readFileSync(join(DOCS, "configuration.md"), "utf8"));
  });

  it("each documented variable sets its key: its default, as a string, loads to the same configuration", () => {
    const defaults = loadConfig({ env: {} });
    let checked = 0;
    for (const row of referenceSections().flatMap((s) => s.rows)) {
      if (row.env === undefined || !row.env.startsWith("BIFROST_") || row.env.includes("<") || !("defaultValue" in row))
        continue;
      // An empty variable is a list of one empty string, not an empty list.
      if (Array.isArray(row.defaultValue) && row.defaultValue.length === 0) continue;
      const text = Array.isArray(row.defaultValue) ? row.defaultValue.join(",") : String(row.defaultValue);
      // An unknown key is an error, so a variable naming no key fails to load.
      assert.deepEqual(loadConfig({ env: { [row.env]: text } }), defaults, row.env);
      checked++;
    }
    assert.ok(checked > 100, `checked ${checked} variables`);
    const changed = loadConfig({
      env: {
        BIFROST_QUERY__ACTIONS__COLLECTORS__EDGE1: "http://edge1:4318",
        BIFROST_AUTH__TENANTS__SHOP__TOKENS: "a-token-of-16-chars,another-token-16",
      },
    });
    assert.deepEqual(changed.query.actions.collectors, { edge1: "http://edge1:4318" });
    assert.deepEqual(changed.auth.tenants, { shop: { tokens: ["a-token-of-16-chars", "another-token-16"] } });
  });
});

/** The part of `loaded` that `example` has keys for, to compare with the example. */
function written(loaded: unknown, example: unknown): unknown {
  if (Array.isArray(example))
    return Array.isArray(loaded) ? example.map((item, i) => written(loaded[i], item)) : loaded;
  if (typeof example !== "object" || example === null || typeof loaded !== "object" || loaded === null) return loaded;
  return Object.fromEntries(
    Object.entries(example).map(([name, inner]) => [name, written((loaded as Record<string, unknown>)[name], inner)]),
  );
}

describe("configuration examples", () => {
  it("each copy-paste example of docs/configuration.md loads, and sets its key", () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-examples-"));
    try {
      const examples = referenceSections().flatMap((s) => s.examples);
      for (const { key, value } of examples) {
        const path = key.split(".");
        const file = join(dir, "bifrost.yaml");
        // As the reference prints it: the example nested under its key.
        writeFileSync(file, stringify(path.reduceRight<unknown>((inner, part) => ({ [part]: inner }), value)));
        const loaded = path.reduce<unknown>(
          (node, part) => (node as Record<string, unknown>)[part],
          loadConfig({ file, env: {} }),
        );
        // Every value the example writes is in the loaded configuration (none renamed, dropped or reshaped).
        assert.deepEqual(written(loaded, value), value, key);
      }
      assert.deepEqual(examples.map((e) => e.key).sort(), [
        "collector.journal",
        "collector.kubernetes",
        "collector.remote_write",
        "collector.scrape",
        "collector.syslog",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("documentation links", () => {
  it("every relative link of README.md and docs/*.md names a file that exists", () => {
    const pages = [
      join(REPO_ROOT, "README.md"),
      join(REPO_ROOT, "deploy/README.md"),
      ...readdirSync(DOCS)
        .filter((f) => f.endsWith(".md"))
        .map((f) => join(DOCS, f)),
    ];
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target] of readFileSync(page, "utf8").matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!) || target!.startsWith("#")) continue;
        const file = resolve(dirname(page), target!.split("#")[0]!);
        if (!existsSync(file)) broken.push(`${page.slice(REPO_ROOT.length)}: ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
