import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { checkRemoteConfig, RemoteConfigRefused } from "../collector/agent/remote.js";
import { loadConfig } from "../config.js";
import { signRemoteConfig } from "../common/remote-config.js";
import { signingKey } from "../common/signing.js";
import type { AgentConfigMap } from "../proto/opamp.js";
import { writeKeys } from "./helpers/fleet.js";

// What a collector accepts of a remote configuration: signed for it by an action key, not a replay, only what a
// remote configuration may set, and never a wider action allow-list or files outside the allowed directories.

describe("remote configuration checks", () => {
  const dir = mkdtempSync(join(tmpdir(), "bifrost-fleet-agent-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const keys = writeKeys(dir);
  const other = writeKeys(mkdtempSync(join(dir, "other-")));
  const restart = {
    name: "restart_service",
    command: ["systemctl", "restart", "{{service}}"],
    params: { service: { pattern: "[a-z]+" } },
    timeout_ms: 30_000,
    cooldown_ms: 300_000,
  };
  const localFile = join(dir, "collector.yaml");
  writeFileSync(
    localFile,
    JSON.stringify({
      node: { id: "store-042-gw1" },
      collector: {
        files: [{ paths: ["/opt/app/app.log"] }],
        actions: {
          enabled: true,
          keys: [{ id: "fleet", algorithm: "ed25519", file: keys.publicFile }],
          allowed: [restart, { name: "clear_cache", command: ["/usr/bin/clear-cache"] }],
        },
        fleet: { enabled: true, url: "ws://fleet:4320/v1/opamp", remote_file_paths: ["/var/log"] },
      },
    }),
  );
  const local = loadConfig({ file: localFile, env: {} });
  const now = Date.now();

  function offer(
    document: string,
    options: { node?: string; key?: string; issuedAt?: number; sign?: boolean } = {},
  ): AgentConfigMap {
    const body = Buffer.from(document);
    const map: AgentConfigMap = { "bifrost.yaml": { body, contentType: "text/yaml" } };
    if (options.sign === false) return map;
    const key = signingKey({ id: "fleet", algorithm: "ed25519", file: options.key ?? keys.privateFile });
    const signature = signRemoteConfig(key, options.node ?? "store-042-gw1", body, options.issuedAt ?? now);
    map["bifrost.yaml.sig"] = { body: Buffer.from(JSON.stringify(signature)), contentType: "application/json" };
    return map;
  }

  const check = (map: AgentConfigMap, lastIssuedAt = 0) =>
    checkRemoteConfig(map, "h", { localFile, local, lastIssuedAt, nowMs: now });
  const refused = (map: AgentConfigMap, pattern: RegExp, lastIssuedAt = 0) =>
    assert.throws(
      () => check(map, lastIssuedAt),
      (err: unknown) => err instanceof RemoteConfigRefused && pattern.test(err.message),
    );

  it("applies a signed configuration over the local file", () => {
    const { config, stored } = check(offer("collector:\n  batch:\n    max_entries: 777\n"));
    assert.equal(config.collector.batch.max_entries, 777);
    assert.equal(config.node.id, "store-042-gw1", "the local file stays underneath");
    assert.deepEqual(
      config.collector.actions.allowed.map((a) => a.name),
      ["restart_service", "clear_cache"],
    );
    assert.equal(stored.issued_at, now);
  });

  it("takes an empty offer as the local file alone, without a signature", () => {
    const { config, stored } = check({});
    assert.deepEqual(config, local);
    assert.equal(stored.body, "");
  });

  it("refuses unsigned, foreign-key, other-node, tampered, replayed and future configurations", () => {
    const doc = "collector:\n  batch:\n    max_entries: 777\n";
    refused(offer(doc, { sign: false }), /not signed/);
    refused(offer(doc, { key: other.privateFile }), /does not verify/);
    refused(offer(doc, { node: "store-043-gw1" }), /signed for node "store-043-gw1"/);
    const tampered = offer(doc);
    tampered["bifrost.yaml"]!.body = Buffer.from("collector:\n  batch:\n    max_entries: 1\n");
    refused(tampered, /other bytes/);
    refused(offer(doc, { issuedAt: now - 1000 }), /a replay/, now);
    refused(offer(doc, { issuedAt: now + 3_600_000 }), /in the future/);
  });

  it("refuses what only the node's file may set, and what the schema refuses", () => {
    refused(offer("node:\n  id: other\n"), /node: a remote configuration may set only/);
    refused(offer("collector:\n  fleet:\n    url: ws://evil:4320/v1/opamp\n"), /collector\.fleet: only the node's own/);
    refused(offer("collector:\n  actions:\n    keys: []\n"), /collector\.actions\.keys: only the node's own/);
    refused(offer("collector:\n  wal:\n    dir: /tmp/elsewhere\n"), /collector\.wal\.dir/);
    refused(offer("collector:\n  batch:\n    max_entries: -5\n"), /collector\.batch\.max_entries/);
  });

  it("lets a remote configuration narrow the action allow-list, never widen it", () => {
    const narrowed = check(offer(`collector:\n  actions:\n    allowed:\n      - ${JSON.stringify(restart)}\n`)).config;
    assert.deepEqual(
      narrowed.collector.actions.allowed.map((a) => a.name),
      ["restart_service"],
    );
    refused(
      offer(
        `collector:\n  actions:\n    allowed:\n      - { name: run_anything, command: ["/bin/sh", "-c", "{{cmd}}"], params: { cmd: { pattern: ".*" } } }\n`,
      ),
      /run_anything is not on the node's own allow-list/,
    );
    refused(
      offer(
        `collector:\n  actions:\n    allowed:\n      - ${JSON.stringify({ ...restart, params: { service: { pattern: ".*" } } })}\n`,
      ),
      /restart_service would be allowed more broadly/,
    );
    refused(
      offer(`collector:\n  actions:\n    allowed:\n      - ${JSON.stringify({ ...restart, cooldown_ms: 0 })}\n`),
      /more broadly/,
    );
  });

  it("lets a remote configuration tail files only under the allowed directories", () => {
    const ok = check(offer("collector:\n  files:\n    - { paths: [/var/log/nginx/*.log, /opt/app/app.log] }\n")).config;
    assert.deepEqual(ok.collector.files[0]!.paths, ["/var/log/nginx/*.log", "/opt/app/app.log"]);
    refused(offer("collector:\n  files:\n    - { paths: [/etc/shadow] }\n"), /\/etc\/shadow lies outside/);
    refused(offer("collector:\n  files:\n    - { paths: [/var/log/../../etc/*] }\n"), /lies outside/);
    refused(offer("collector:\n  files:\n    - { paths: [/var/logs-elsewhere/x] }\n"), /lies outside/);
  });
});
