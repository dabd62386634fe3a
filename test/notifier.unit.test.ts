import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { Registry } from "prom-client";
import { notifierConfig } from "../query/config.js";
import { createLogger } from "../common/log.js";
import {
  deadLetterPath,
  Notifier,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verify,
  type DeadLetter,
  type WebhookMessage,
} from "../query/notifier/index.js";
import { alertFingerprint, type AlertNotice } from "../query/ruler/notice.js";
import { WEBHOOK_ALERT_FIELDS, WEBHOOK_MESSAGE_FIELDS, waitFor, WebhookReceiver } from "./helpers/webhook-receiver.js";

const log = createLogger("silent");
const dir = mkdtempSync(join(tmpdir(), "bifrost-notifier-"));
let instances = 0;
const open: Notifier[] = [];

function paths(): { state_file: string; dead_letter_dir: string } {
  const n = instances++;
  return { state_file: join(dir, `state-${n}.json`), dead_letter_dir: join(dir, `dead-${n}`) };
}

async function notifier(raw: Record<string, unknown>, registry = new Registry()): Promise<Notifier> {
  const config = notifierConfig({ backoff_ms: 5, max_backoff_ms: 20, ...paths(), ...raw });
  const started = await Notifier.open({ config, log, registry });
  open.push(started);
  return started;
}

function alert(labels: Record<string, string>, extra: Partial<AlertNotice> = {}): AlertNotice {
  const all = { alertname: "HighLoad", ...labels };
  return {
    labels: all,
    annotations: { summary: "load is high" },
    state: "firing",
    startsAt: new Date(Date.now() - 1000).toISOString(),
    generatorURL: "http://bifrost.example/graph?g0.expr=load",
    fingerprint: alertFingerprint(all),
    ...extra,
  };
}

/** The first record of a dead-letter log, once one is completely written. */
function firstDeadLetter(file: string): DeadLetter | false {
  if (!existsSync(file)) return false;
  const text = readFileSync(file, "utf8");
  return text.endsWith("\n") && (JSON.parse(text.split("\n")[0]!) as DeadLetter);
}

function messages(receiver: WebhookReceiver): WebhookMessage[] {
  return receiver.requests.map((request) => request.json as WebhookMessage);
}

const fast = { group_wait_ms: 50, group_interval_ms: 10_000, repeat_interval_ms: 3_600_000 };

describe("notifier webhooks", () => {
  let hook: WebhookReceiver;
  before(async () => {
    hook = await new WebhookReceiver().start();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((n) => n.close()));
    hook.requests.length = 0;
    hook.respond = () => ({ status: 200 });
  });
  after(() => hook.stop());

  it("batches a new group's alerts for group_wait into one version 4 message, field by field", async () => {
    const n = await notifier({
      external_url: "http://bifrost.example",
      receivers: [{ name: "ops", url: `${hook.url}/hook`, group_by: ["alertname"], ...fast }],
    });
    const startsAt = "2026-11-28T05:00:00.120Z";
    n.send([
      alert({ instance: "b", job: "node", severity: "page" }, { startsAt: new Date(Date.now() + 1000).toISOString() }),
    ]);
    n.send([
      alert(
        { instance: "a", job: "node", severity: "page" },
        { startsAt, annotations: { summary: "load is high", runbook: "r" } },
      ),
    ]);
    const [message] = await waitFor("the first notification", () => messages(hook)[0] !== undefined && messages(hook));
    assert.equal(hook.requests.length, 1);
    assert.equal(hook.requests[0]!.path, "/hook");
    assert.equal(hook.requests[0]!.headers["content-type"], "application/json");
    assert.deepEqual(Object.keys(message!), WEBHOOK_MESSAGE_FIELDS);
    assert.equal(message!.receiver, "ops");
    assert.equal(message!.status, "firing");
    assert.equal(message!.version, "4");
    assert.equal(message!.groupKey, '{}/{}:{alertname="HighLoad"}');
    assert.equal(message!.truncatedAlerts, 0);
    assert.equal(message!.externalURL, "http://bifrost.example");
    assert.deepEqual(message!.groupLabels, { alertname: "HighLoad" });
    assert.deepEqual(message!.commonLabels, { alertname: "HighLoad", job: "node", severity: "page" });
    assert.deepEqual(message!.commonAnnotations, { summary: "load is high" });
    // Sorted as Alertmanager sorts: by job, then instance.
    assert.deepEqual(
      message!.alerts.map((a) => a.labels["instance"]),
      ["a", "b"],
    );
    const first = message!.alerts[0]!;
    assert.deepEqual(Object.keys(first), WEBHOOK_ALERT_FIELDS);
    assert.equal(first.status, "firing");
    assert.deepEqual(first.labels, { alertname: "HighLoad", instance: "a", job: "node", severity: "page" });
    assert.deepEqual(Object.keys(first.labels), ["alertname", "instance", "job", "severity"]);
    assert.deepEqual(first.annotations, { runbook: "r", summary: "load is high" });
    assert.equal(first.startsAt, "2026-11-28T05:00:00.12Z");
    assert.equal(first.endsAt, "0001-01-01T00:00:00Z");
    assert.equal(first.generatorURL, "http://bifrost.example/graph?g0.expr=load");
    assert.equal(first.fingerprint, alertFingerprint(first.labels));
    assert.match(first.fingerprint, /^[0-9a-f]{16}$/);
  });

  it("computes fingerprints as Prometheus's LabelSet.Fingerprint (FNV-1a 64)", () => {
    // Values from prometheus/common model/fingerprinting_test.go (TestMetricToFingerprint).
    assert.equal(alertFingerprint({}), "cbf29ce484222325");
    assert.equal(
      BigInt(`0x${alertFingerprint({ name: "garland, briggs", fear: "love is not enough" })}`),
      5799056148416392346n,
    );
  });

  it("sends alerts joining a notified group after group_interval, together with the others", async () => {
    const n = await notifier({
      receivers: [
        {
          name: "ops",
          url: hook.url,
          group_by: ["alertname"],
          group_wait_ms: 20,
          group_interval_ms: 400,
          repeat_interval_ms: 3_600_000,
        },
      ],
    });
    const start = Date.now();
    n.send([alert({ instance: "a" })]);
    await waitFor("the first notification", () => hook.requests.length === 1);
    n.send([alert({ instance: "a" }), alert({ instance: "b" })]);
    await waitFor("the second notification", () => hook.requests.length === 2);
    const [first, second] = messages(hook);
    assert.deepEqual(
      first!.alerts.map((a) => a.labels["instance"]),
      ["a"],
    );
    assert.deepEqual(
      second!.alerts.map((a) => a.labels["instance"]),
      ["a", "b"],
    );
    // The first flush came after `start`, the next one group_interval after the first; latency only adds.
    assert.ok(
      hook.requests[1]!.at - start >= 400,
      `the change came ${hook.requests[1]!.at - start} ms after the first alert`,
    );
  });

  it("re-sends an unchanged group after repeat_interval, not on every group_interval", async () => {
    const n = await notifier({
      receivers: [{ name: "ops", url: hook.url, group_wait_ms: 10, group_interval_ms: 20, repeat_interval_ms: 400 }],
    });
    const ruler = setInterval(() => n.send([alert({ instance: "a" })]), 15);
    const start = Date.now();
    try {
      n.send([alert({ instance: "a" })]);
      await waitFor("two repeats", () => hook.requests.length >= 3);
    } finally {
      clearInterval(ruler);
    }
    const [first, second, third] = hook.requests;
    // Each notification's flush came more than repeat_interval after the one before, the first after `start`;
    // not every group_interval (20 ms).
    assert.ok(second!.at - start >= 400, `first repeat ${second!.at - start} ms after the first alert`);
    assert.ok(third!.at - start >= 800, `second repeat ${third!.at - start} ms after the first alert`);
    assert.deepEqual((second!.json as WebhookMessage).alerts, (first!.json as WebhookMessage).alerts);
  });

  it("notifies a resolution once with send_resolved, then drops the alert from its group", async () => {
    const n = await notifier({
      receivers: [
        {
          name: "resolved",
          url: `${hook.url}/resolved`,
          group_wait_ms: 10,
          group_interval_ms: 50,
          repeat_interval_ms: 3_600_000,
        },
        {
          name: "firing-only",
          url: `${hook.url}/firing-only`,
          send_resolved: false,
          group_wait_ms: 10,
          group_interval_ms: 50,
          repeat_interval_ms: 3_600_000,
        },
      ],
    });
    const at = (path: string): WebhookMessage[] =>
      hook.requests.filter((r) => r.path === path).map((r) => r.json as WebhookMessage);
    n.send([alert({ instance: "a" })]);
    await waitFor("both first notifications", () => at("/resolved").length === 1 && at("/firing-only").length === 1);
    const endsAt = new Date(Date.now() - 5);
    n.send([alert({ instance: "a" }, { state: "resolved", endsAt: endsAt.toISOString() })]);
    const resolved = await waitFor("the resolution", () => at("/resolved")[1]);
    assert.equal(resolved.status, "resolved");
    assert.equal(resolved.alerts[0]!.status, "resolved");
    assert.equal(resolved.alerts[0]!.endsAt, endsAt.toISOString().replace(/\.?0*Z$/, "Z"));
    // A new alert of the same group shows the resolved one is gone: neither receiver sees it again.
    n.send([alert({ instance: "b" })]);
    const next = await waitFor("the next firing notification", () => at("/resolved")[2]);
    assert.deepEqual(
      next.alerts.map((a) => [a.labels["instance"], a.status]),
      [["b", "firing"]],
    );
    const firingOnly = await waitFor("the firing-only receiver's next notification", () => at("/firing-only")[1]);
    assert.deepEqual(
      firingOnly.alerts.map((a) => [a.labels["instance"], a.status]),
      [["b", "firing"]],
    );
  });

  it('groups by the group_by labels, every label with "...", and all alerts together with none', async () => {
    const n = await notifier({
      receivers: [
        { name: "by-name", url: `${hook.url}/by-name`, group_by: ["alertname", "site"], ...fast },
        { name: "each", url: `${hook.url}/each`, group_by: ["..."], ...fast },
        { name: "one", url: `${hook.url}/one`, ...fast },
      ],
    });
    n.send([
      alert({ site: "s1", instance: "a" }),
      alert({ site: "s1", instance: "b" }),
      alert({ site: "s2", instance: "a" }),
      alert({ instance: "c" }, { labels: { alertname: "DiskFull", instance: "c" } }),
    ]);
    await waitFor("all notifications", () => hook.requests.length === 3 + 4 + 1);
    const at = (path: string): WebhookMessage[] =>
      hook.requests.filter((r) => r.path === path).map((r) => r.json as WebhookMessage);
    const byName = at("/by-name").sort((a, b) => a.groupKey.localeCompare(b.groupKey));
    assert.deepEqual(
      byName.map((m) => [m.groupKey, m.groupLabels, m.alerts.length]),
      [
        ['{}/{}:{alertname="DiskFull"}', { alertname: "DiskFull" }, 1],
        ['{}/{}:{alertname="HighLoad", site="s1"}', { alertname: "HighLoad", site: "s1" }, 2],
        ['{}/{}:{alertname="HighLoad", site="s2"}', { alertname: "HighLoad", site: "s2" }, 1],
      ],
    );
    assert.deepEqual(
      at("/each").map((m) => m.alerts.length),
      [1, 1, 1, 1],
    );
    assert.deepEqual(
      at("/each")
        .map((m) => m.groupLabels)
        .find((l) => l["instance"] === "c"),
      { alertname: "DiskFull", instance: "c" },
    );
    assert.equal(at("/one")[0]!.alerts.length, 4);
    assert.equal(at("/one")[0]!.groupKey, "{}/{}:{}");
  });

  it("routes by matchers, fully anchored, to every receiver that matches", async () => {
    const n = await notifier({
      receivers: [
        { name: "pager", url: `${hook.url}/pager`, matchers: { severity: "page|critical" }, ...fast },
        { name: "all", url: `${hook.url}/all`, ...fast },
      ],
    });
    n.send([
      alert({ severity: "critical" }),
      alert({ severity: "warning" }),
      alert({ severity: "critical-ish" }),
      alert({}),
    ]);
    await waitFor("both notifications", () => hook.requests.length === 2);
    const pager = hook.requests.find((r) => r.path === "/pager")!.json as WebhookMessage;
    const all = hook.requests.find((r) => r.path === "/all")!.json as WebhookMessage;
    assert.deepEqual(
      pager.alerts.map((a) => a.labels["severity"]),
      ["critical"],
    );
    assert.equal(pager.groupKey, '{}/{severity=~"page|critical"}:{}');
    assert.equal(all.alerts.length, 4);
  });

  it("truncates to max_alerts and counts the rest", async () => {
    const n = await notifier({ receivers: [{ name: "ops", url: hook.url, max_alerts: 2, ...fast }] });
    n.send(
      ["a", "b", "c", "d", "e"].map((instance) =>
        alert({ instance, zone: instance === "a" || instance === "b" ? "z1" : "z2" }),
      ),
    );
    const message = await waitFor("the notification", () => messages(hook)[0]);
    assert.equal(message.alerts.length, 2);
    assert.equal(message.truncatedAlerts, 3);
    assert.deepEqual(message.commonLabels, { alertname: "HighLoad", zone: "z1" }, "common labels of the alerts sent");
  });

  it("signs the body with HMAC-SHA256 over `<timestamp>.<body>`, verifiable by a responder", async () => {
    const secret = "a-shared-secret-of-some-length";
    const n = await notifier({
      receivers: [{ name: "ops", url: hook.url, hmac_secret: secret, headers: { Authorization: "Bearer t" }, ...fast }],
    });
    n.send([alert({ instance: "a" })]);
    const request = await waitFor("the notification", () => hook.requests[0]);
    const timestamp = request.headers[TIMESTAMP_HEADER.toLowerCase()] as string;
    const signature = request.headers[SIGNATURE_HEADER.toLowerCase()] as string;
    assert.match(timestamp, /^\d+$/);
    assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 60);
    // The documented procedure, written out.
    assert.equal(
      signature,
      `sha256=${createHmac("sha256", secret).update(`${timestamp}.${request.body}`).digest("hex")}`,
    );
    assert.equal(verify(secret, { signature, timestamp }, request.body), true);
    assert.equal(verify(secret, { signature, timestamp }, request.body.replace("HighLoad", "LowLoad")), false);
    assert.equal(verify("another-secret-of-some-length", { signature, timestamp }, request.body), false);
    assert.equal(verify(secret, { signature, timestamp: String(Number(timestamp) - 3600) }, request.body), false);
    assert.equal(request.headers["authorization"], "Bearer t");
  });

  it("retries 5xx and 429 (after its Retry-After) with backoff, then succeeds", async () => {
    const registry = new Registry();
    hook.respond = (_, index) =>
      index === 0 ? { status: 503 } : index === 1 ? { status: 429, headers: { "Retry-After": "0" } } : { status: 200 };
    const n = await notifier({ max_attempts: 5, receivers: [{ name: "flaky", url: hook.url, ...fast }] }, registry);
    n.send([alert({ instance: "a" })]);
    await waitFor("the third attempt", () => hook.requests.length === 3);
    const bodies = hook.requests.map((r) => r.json);
    assert.deepEqual(bodies[1], bodies[0]);
    assert.deepEqual(bodies[2], bodies[0]);
    await waitFor("the sent metric", async () =>
      (await registry.getSingleMetricAsString("bifrost_notifier_notifications_sent_total")).includes(
        'receiver="flaky"} 1',
      ),
    );
    const failed = await registry.getSingleMetricAsString("bifrost_notifier_notification_attempts_failed_total");
    assert.match(failed, /receiver="flaky",reason="status_503"} 1/);
    assert.match(failed, /receiver="flaky",reason="status_429"} 1/);
    assert.equal(existsSync(deadLetterPath(join(dir, `dead-${instances - 1}`), "flaky")), false);
  });

  it("dead-letters a notification whose attempts ran out, with payload, error and attempts", async () => {
    const registry = new Registry();
    hook.respond = () => ({ status: 500 });
    const n = await notifier({ max_attempts: 3, receivers: [{ name: "down", url: hook.url, ...fast }] }, registry);
    const deadLetters = join(dir, `dead-${instances - 1}`);
    n.send([alert({ instance: "a" })]);
    const file = deadLetterPath(deadLetters, "down");
    const letter = await waitFor("the dead letter", () => firstDeadLetter(file));
    assert.equal(hook.requests.length, 3);
    assert.equal(letter.receiver, "down");
    assert.equal(letter.url, hook.url);
    assert.equal(letter.attempts, 3);
    assert.match(letter.error, /HTTP 500/);
    assert.equal(letter.groupKey, "{}/{}:{}");
    assert.deepEqual(letter.payload, hook.requests[0]!.json);
    assert.match(
      await registry.getSingleMetricAsString("bifrost_notifier_notifications_dead_lettered_total"),
      /receiver="down"} 1/,
    );
  });

  it("dead-letters a network failure after its attempts", async () => {
    const gone = await new WebhookReceiver().start();
    await gone.stop();
    const n = await notifier({ max_attempts: 2, receivers: [{ name: "gone", url: gone.url, ...fast }] });
    const file = deadLetterPath(join(dir, `dead-${instances - 1}`), "gone");
    n.send([alert({ instance: "a" })]);
    const letter = await waitFor("the dead letter", () => firstDeadLetter(file));
    assert.equal(letter.attempts, 2);
    assert.match(letter.error, /fetch failed|ECONNREFUSED/);
  });

  it("does not retry a 400", async () => {
    hook.respond = () => ({ status: 400 });
    const n = await notifier({ max_attempts: 5, receivers: [{ name: "strict", url: hook.url, ...fast }] });
    const file = deadLetterPath(join(dir, `dead-${instances - 1}`), "strict");
    n.send([alert({ instance: "a" })]);
    const letter = await waitFor("the dead letter", () => firstDeadLetter(file));
    assert.equal(letter.attempts, 1);
    assert.match(letter.error, /HTTP 400/);
    assert.equal(hook.requests.length, 1);
  });

  it("does not page again after a restart, and still sends what was pending", async () => {
    const files = paths();
    const receivers = [
      { name: "ops", url: hook.url, group_wait_ms: 10, group_interval_ms: 100, repeat_interval_ms: 3_600_000 },
    ];
    const first = await Notifier.open({
      config: notifierConfig({ ...files, receivers }),
      log,
      registry: new Registry(),
    });
    first.send([alert({ instance: "a" }), alert({ instance: "b" })]);
    await waitFor("the page", () => hook.requests.length === 1);
    await first.close();

    const restarted = Date.now();
    const second = await Notifier.open({
      config: notifierConfig({ ...files, receivers }),
      log,
      registry: new Registry(),
    });
    open.push(second);
    second.send([alert({ instance: "a" }), alert({ instance: "b" })]);
    // A flush after the restart shows in the saved state as a later next flush; it found nothing new to say.
    const flushedAfterRestart = (): boolean => {
      const state = JSON.parse(readFileSync(files.state_file, "utf8")) as {
        receivers: { ops: { groups: { nextFlushAt: number }[] } };
      };
      return state.receivers.ops.groups.some((g) => g.nextFlushAt >= restarted + 100);
    };
    await waitFor("two flushes after the restart", async () => {
      if (!flushedAfterRestart()) return false;
      await new Promise((resolve) => setTimeout(resolve, 120));
      return true;
    });
    assert.equal(hook.requests.length, 1, "no second page after the restart");

    // b resolves, and the notifier stops before its group's next flush: the resolution survives the restart.
    second.send([alert({ instance: "a" }), alert({ instance: "b" }, { state: "resolved" })]);
    await second.close();
    open.splice(open.indexOf(second), 1);
    const third = await Notifier.open({
      config: notifierConfig({ ...files, receivers }),
      log,
      registry: new Registry(),
    });
    open.push(third);
    const resolved = await waitFor("the resolution after the restart", () => messages(hook)[1]);
    assert.deepEqual(
      resolved.alerts.map((a) => [a.labels["instance"], a.status]),
      [
        ["a", "firing"],
        ["b", "resolved"],
      ],
    );
    assert.equal(hook.requests.length, 2);
  });
});

describe("notifier restarts", () => {
  let hook: WebhookReceiver;
  before(async () => {
    hook = await new WebhookReceiver().start();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((n) => n.close()));
  });
  after(() => hook.stop());

  /** Resolves once a group of `receiver` has flushed after `since`, as the saved state shows. */
  function flushedSince(stateFile: string, receiver: string, since: number, groupIntervalMs: number): () => boolean {
    return () => {
      if (!existsSync(stateFile)) return false;
      const state = JSON.parse(readFileSync(stateFile, "utf8")) as {
        receivers: Record<string, { groups: { nextFlushAt: number }[] }>;
      };
      return (state.receivers[receiver]?.groups ?? []).some((g) => g.nextFlushAt >= since + groupIntervalMs);
    };
  }

  it("does not resolve, and so page again, alerts that outlived resolve_timeout only because the notifier was down", async () => {
    const files = paths();
    const raw = {
      ...files,
      resolve_timeout_ms: 600,
      receivers: [
        { name: "ops", url: hook.url, group_wait_ms: 10, group_interval_ms: 50, repeat_interval_ms: 3_600_000 },
      ],
    };
    const first = await Notifier.open({ config: notifierConfig(raw), log, registry: new Registry() });
    const evaluate = (n: Notifier) => setInterval(() => n.send([alert({ instance: "a" })]), 20);
    const before = evaluate(first);
    try {
      first.send([alert({ instance: "a" })]);
      await waitFor("the page", () => hook.requests.length === 1);
    } finally {
      clearInterval(before);
    }
    await first.close();
    // Down for longer than resolve_timeout.
    await new Promise((resolve) => setTimeout(resolve, 800));

    const restarted = Date.now();
    const second = await Notifier.open({ config: notifierConfig(raw), log, registry: new Registry() });
    open.push(second);
    await waitFor("a flush before the ruler's first evaluation", flushedSince(files.state_file, "ops", restarted, 50));
    const ruler = evaluate(second);
    try {
      const evaluating = Date.now();
      await waitFor("a flush with the ruler running", flushedSince(files.state_file, "ops", evaluating + 60, 50));
    } finally {
      clearInterval(ruler);
    }
    assert.deepEqual(
      messages(hook).map((m) => m.status),
      ["firing"],
      "no resolution and no second page",
    );
  });
});

describe("notifier Alertmanager targets", () => {
  let am: WebhookReceiver;
  before(async () => {
    am = await new WebhookReceiver().start();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((n) => n.close()));
  });
  after(() => am.stop());

  it("posts as Prometheus does: firing alerts again after resend_delay with endsAt 4 delays ahead, resolved ones with their end", async () => {
    const n = await notifier({ alertmanagers: [`${am.url}/prefix/`], resend_delay_ms: 400 });
    const firing = alert({ instance: "a" });
    const sentAt = Date.now();
    n.send([firing]);
    const first = await waitFor("the first post", () => am.requests[0]);
    assert.equal(first.path, "/prefix/api/v2/alerts");
    const [posted] = first.json as {
      labels: Record<string, string>;
      endsAt: string;
      startsAt: string;
      annotations: Record<string, string>;
      generatorURL: string;
    }[];
    assert.deepEqual(Object.keys(posted!), ["labels", "annotations", "startsAt", "endsAt", "generatorURL"]);
    assert.deepEqual(posted!.labels, { alertname: "HighLoad", instance: "a" });
    assert.equal(Date.parse(posted!.startsAt), Date.parse(firing.startsAt));
    assert.ok(
      Date.parse(posted!.endsAt) >= sentAt + 1600 && Date.parse(posted!.endsAt) <= Date.now() + 1600,
      posted!.endsAt,
    );

    // Every evaluation hands the alert over; it is posted again only once resend_delay has passed.
    const ruler = setInterval(() => n.send([firing]), 20);
    try {
      await waitFor("a resend", () => am.requests.length >= 2);
    } finally {
      clearInterval(ruler);
    }
    assert.ok(am.requests[1]!.at - sentAt >= 400, `resent ${am.requests[1]!.at - sentAt} ms after the first post`);

    const endsAt = new Date(Date.now() - 10);
    const before = am.requests.length;
    n.send([{ ...firing, state: "resolved", endsAt: endsAt.toISOString() }]);
    const resolved = await waitFor("the resolved post", () => am.requests[before]);
    assert.equal(Date.parse((resolved.json as { endsAt: string }[])[0]!.endsAt), endsAt.getTime());
  });

  it("dead-letters posts to an Alertmanager that refuses them", async () => {
    const refusing = await new WebhookReceiver().start();
    refusing.respond = () => ({ status: 400 });
    try {
      const n = await notifier({ alertmanagers: [refusing.url] });
      const file = deadLetterPath(join(dir, `dead-${instances - 1}`), `alertmanager:${refusing.url}`);
      n.send([alert({ instance: "a" })]);
      const letter = await waitFor("the dead letter", () => firstDeadLetter(file));
      assert.equal(letter.receiver, `alertmanager:${refusing.url}`);
      assert.equal(letter.url, `${refusing.url}/api/v2/alerts`);
      assert.deepEqual(letter.payload, refusing.requests[0]!.json);
    } finally {
      await refusing.stop();
    }
  });
});
