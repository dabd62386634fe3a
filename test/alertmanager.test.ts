import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { notifierConfig } from "../query/config.js";
import { createLogger } from "../common/log.js";
import { Notifier, type WebhookMessage } from "../query/notifier/index.js";
import { alertFingerprint } from "../query/ruler/notice.js";
import { freePort } from "./helpers/services.js";
import { WEBHOOK_ALERT_FIELDS, WEBHOOK_MESSAGE_FIELDS, waitFor, WebhookReceiver } from "./helpers/webhook-receiver.js";

// Debian's prometheus-alertmanager package installs the binary under this name; upstream calls it alertmanager.
const binary = ["prometheus-alertmanager", "alertmanager"].find((name) => spawnSync(name, ["--version"]).status === 0);

interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  fingerprint: string;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string };
}

describe(
  "a real Alertmanager receives Bifrost's alerts",
  {
    skip:
      binary === undefined && "prometheus-alertmanager is not installed (apt-get install -y prometheus-alertmanager)",
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), "bifrost-alertmanager-"));
    const hook = new WebhookReceiver();
    let alertmanager: ChildProcess;
    let url: string;
    let notifier: Notifier;
    let output = "";

    before(async () => {
      await hook.start();
      const config = join(dir, "alertmanager.yml");
      writeFileSync(
        config,
        [
          "route:",
          "  receiver: bifrost-test",
          "  group_by: [alertname]",
          "  group_wait: 100ms",
          "  group_interval: 500ms",
          "  repeat_interval: 1h",
          "receivers:",
          "  - name: bifrost-test",
          "    webhook_configs:",
          `      - url: ${hook.url}/from-alertmanager`,
          "        send_resolved: true",
          "",
        ].join("\n"),
      );
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      alertmanager = spawn(
        binary!,
        [
          `--config.file=${config}`,
          `--storage.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${port}`,
          "--cluster.listen-address=",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      alertmanager.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      alertmanager.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      await waitFor(
        "Alertmanager to be ready",
        async () => {
          if (alertmanager.exitCode !== null)
            throw new Error(`alertmanager exited with ${alertmanager.exitCode}:\n${output}`);
          return fetch(`${url}/-/ready`).then(
            (r) => r.ok,
            () => false,
          );
        },
        30_000,
      );
      notifier = await Notifier.open({
        config: notifierConfig({
          alertmanagers: [url],
          resend_delay_ms: 60_000,
          state_file: join(dir, "state.json"),
          dead_letter_dir: join(dir, "dead"),
        }),
        log: createLogger("silent"),
        registry: new Registry(),
      });
    });

    after(async () => {
      await notifier?.close();
      await hook.stop();
      if (alertmanager !== undefined && alertmanager.exitCode === null) {
        await new Promise<void>((resolve) => {
          alertmanager.once("exit", () => resolve());
          alertmanager.kill("SIGTERM");
        });
      }
    });

    const startsAt = new Date(Date.now() - 60_000);
    const labels = [
      { alertname: "BifrostDiskFull", node: "store-042-gw1", site: "s42", severity: "page" },
      { alertname: "BifrostDiskFull", node: "store-043-gw1", site: "s43", severity: "page" },
    ];
    const annotations = { summary: "disk almost full", runbook_url: "https://runbooks.example/disk" };

    it("lists our alerts on its /api/v2/alerts, with our labels and fingerprints", async () => {
      const sentAt = Date.now();
      notifier.send(
        labels.map((l) => ({
          labels: l,
          annotations,
          state: "firing",
          startsAt: startsAt.toISOString(),
          generatorURL: "http://bifrost.example/graph",
          fingerprint: alertFingerprint(l),
        })),
      );
      const listed = await waitFor("Alertmanager to list both alerts", async () => {
        const alerts = (await (await fetch(`${url}/api/v2/alerts`)).json()) as GettableAlert[];
        return alerts.length === 2 && alerts;
      });
      listed.sort((a, b) => a.labels["node"]!.localeCompare(b.labels["node"]!));
      for (const [i, alert] of listed.entries()) {
        assert.deepEqual(alert.labels, labels[i]);
        assert.deepEqual(alert.annotations, annotations);
        assert.equal(alert.fingerprint, alertFingerprint(labels[i]!), "Alertmanager's fingerprint is ours");
        assert.equal(alert.generatorURL, "http://bifrost.example/graph");
        assert.equal(alert.status.state, "active");
        assert.equal(Date.parse(alert.startsAt), startsAt.getTime());
        // Firing alerts carry endsAt = now + 4 × resend_delay, so Alertmanager resolves them if Bifrost goes silent.
        const endsAt = Date.parse(alert.endsAt);
        assert.ok(endsAt >= sentAt + 4 * 60_000 && endsAt <= Date.now() + 4 * 60_000, alert.endsAt);
      }
    });

    it("delivers them through its own webhook, in the payload our receivers get", async () => {
      // Alertmanager takes posted alerts in one by one: on a busy machine its first notification after group_wait
      // may hold one of the two, and the next (group_interval later) both.
      const request = await waitFor("Alertmanager's webhook with both alerts", () =>
        hook.requests.find((r) => r.path === "/from-alertmanager" && (r.json as WebhookMessage).alerts.length === 2),
      );
      const message = request.json as WebhookMessage;
      assert.equal(message.version, "4");
      assert.equal(message.status, "firing");
      assert.equal(message.receiver, "bifrost-test");
      assert.equal(message.groupKey, '{}:{alertname="BifrostDiskFull"}');
      assert.deepEqual(message.groupLabels, { alertname: "BifrostDiskFull" });
      assert.deepEqual(message.commonLabels, { alertname: "BifrostDiskFull", severity: "page" });
      assert.deepEqual(message.commonAnnotations, annotations);
      assert.deepEqual(
        message.alerts.map((a) => [a.labels["node"], a.status, a.fingerprint, a.endsAt]),
        labels.map((l) => [l.node, "firing", alertFingerprint(l), "0001-01-01T00:00:00Z"]),
      );
      // Our webhook notifier writes the same fields in the same order.
      assert.deepEqual(Object.keys(message), WEBHOOK_MESSAGE_FIELDS);
      assert.deepEqual(Object.keys(message.alerts[0]!), WEBHOOK_ALERT_FIELDS);
    });

    it("resolves an alert we resolve, and notifies the resolution", async () => {
      const endsAt = new Date(Date.now() - 1000);
      notifier.send([
        {
          labels: labels[0]!,
          annotations,
          state: "resolved",
          startsAt: startsAt.toISOString(),
          endsAt: endsAt.toISOString(),
          generatorURL: "http://bifrost.example/graph",
          fingerprint: alertFingerprint(labels[0]!),
        },
        {
          labels: labels[1]!,
          annotations,
          state: "firing",
          startsAt: startsAt.toISOString(),
          generatorURL: "http://bifrost.example/graph",
          fingerprint: alertFingerprint(labels[1]!),
        },
      ]);
      const message = await waitFor("the resolution from Alertmanager", () =>
        hook.requests
          .filter((r) => r.path === "/from-alertmanager")
          .map((r) => r.json as WebhookMessage)
          .find((m) => m.alerts.some((a) => a.status === "resolved")),
      );
      const resolved = message.alerts.find((a) => a.status === "resolved")!;
      assert.deepEqual(resolved.labels, labels[0]);
      assert.equal(Date.parse(resolved.endsAt), endsAt.getTime());
      const active = (await (
        await fetch(`${url}/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false`)
      ).json()) as GettableAlert[];
      assert.deepEqual(
        active.filter((a) => Date.parse(a.endsAt) > Date.now()).map((a) => a.labels["node"]),
        ["store-043-gw1"],
      );
    });
  },
);
