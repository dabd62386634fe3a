import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { pino } from "pino";
import { Registry } from "prom-client";
import { heartbeatSigningText, KeyRing, signingKey } from "../common/signing.js";
import { CollectorDirectory } from "../query/actions/directory.js";
import { NodeIdConflicts } from "../query/actions/node-conflicts.js";
import { hmacKey } from "./helpers/actions.js";

const TTL = 60_000;
const GAUGE = "bifrost_query_duplicate_node_id_collectors";

/** A detector with its own registry, and the log lines it wrote. */
function detector() {
  const lines: { level: number; msg: string; node: string; collectors?: { incarnation: string; url: string }[] }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  const registry = new Registry();
  const conflicts = new NodeIdConflicts({ ttlMs: TTL, registry, log: pino({ level: "info" }, sink) });
  const gauge = async () =>
    Object.fromEntries(
      (await registry.getMetricsAsJSON())
        .find((m) => m.name === GAUGE)!
        .values.map((v) => [String(v.labels["node_id"]), v.value]),
    );
  // pino writes asynchronously to a plain stream; a tick lets the lines arrive.
  const logs = async () => {
    await new Promise((r) => setImmediate(r));
    return lines;
  };
  return { conflicts, gauge, logs };
}

describe("two live collectors presenting one node id", () => {
  it("are reported by a gauge and one error line once they take turns, and cleared when one goes quiet", async () => {
    const { conflicts, gauge, logs } = detector();
    const t0 = Date.now();
    conflicts.observe("edge-1", "aaaa", t0, "http://10.0.0.1:4318", t0);
    conflicts.observe("edge-1", "bbbb", t0 + 100, "http://10.0.0.2:4318", t0 + 100);
    assert.deepEqual(await gauge(), {}, "a second incarnation alone may be a restart");
    conflicts.observe("edge-1", "aaaa", t0 + 15_000, "http://10.0.0.1:4318", t0 + 15_000);
    conflicts.observe("edge-1", "bbbb", t0 + 15_100, "http://10.0.0.2:4318", t0 + 15_100);
    conflicts.observe("edge-2", "cccc", t0 + 15_100, "http://10.0.0.3:4318", t0 + 15_100);
    assert.deepEqual(conflicts.conflicts(t0 + 16_000), new Map([["edge-1", 2]]));
    const reported = (await logs()).filter((l) => l.level === 50);
    assert.equal(reported.length, 1, "one line per conflict, not per heartbeat");
    assert.equal(reported[0]!.node, "edge-1");
    assert.deepEqual(reported[0]!.collectors!.map((c) => c.url).sort(), [
      "http://10.0.0.1:4318",
      "http://10.0.0.2:4318",
    ]);
    assert.match(reported[0]!.msg, /two live collectors present one node id/);
    // Only one keeps heartbeating: once the other is past the TTL the conflict is over.
    for (let t = t0 + 30_000; t <= t0 + 90_000; t += 15_000)
      conflicts.observe("edge-1", "aaaa", t, "http://10.0.0.1:4318", t);
    assert.deepEqual(conflicts.conflicts(t0 + 90_000), new Map());
    assert.ok((await logs()).some((l) => l.level === 30 && l.node === "edge-1"));
  });

  it("a gauge sample per conflicted node id in /metrics", async () => {
    const { conflicts, gauge } = detector();
    const now = Date.now();
    for (const [i, incarnation] of ["aaaa", "bbbb", "aaaa"].entries())
      conflicts.observe("gw-7", incarnation, now + i, `http://h${incarnation}:4318`, now + i);
    assert.deepEqual(await gauge(), { "gw-7": 2 });
  });

  it("are not confused with a restart, a reimage, a replayed heartbeat or a late one from before a restart", async () => {
    const { conflicts, logs } = detector();
    const t0 = 1_764_000_000_000;
    // Restart: the old incarnation's last heartbeat, sent before the stop, arrives after the new one's first.
    conflicts.observe("edge-1", "old1", t0, "http://a:1", t0);
    conflicts.observe("edge-1", "new1", t0 + 500, "http://a:1", t0 + 500);
    conflicts.observe("edge-1", "old1", t0 + 400, "http://a:1", t0 + 600);
    conflicts.observe("edge-1", "new1", t0 + 15_500, "http://a:1", t0 + 15_500);
    // Reimage: one incarnation, then another for good.
    conflicts.observe("edge-2", "img1", t0, "http://b:1", t0);
    conflicts.observe("edge-2", "img2", t0 + 20_000, "http://b:1", t0 + 20_000);
    conflicts.observe("edge-2", "img2", t0 + 35_000, "http://b:1", t0 + 35_000);
    // A replay of an old heartbeat (same timestamp) after the successor's.
    conflicts.observe("edge-3", "r1", t0, "http://c:1", t0);
    conflicts.observe("edge-3", "r2", t0 + 1000, "http://c:1", t0 + 1000);
    conflicts.observe("edge-3", "r1", t0, "http://c:1", t0 + 2000);
    assert.deepEqual(conflicts.conflicts(t0 + 36_000), new Map());
    assert.deepEqual(await logs(), []);
  });

  it("are found whichever of the two clocks is behind", () => {
    const { conflicts } = detector();
    const t0 = 1_764_000_000_000;
    // edge-1's second collector runs 40 s behind: the spans of their heartbeats overlap once both ran 40 s.
    const round = (k: number) => {
      conflicts.observe("edge-1", "fast", t0 + k * 15_000, "http://f:1", t0 + k * 15_000);
      conflicts.observe("edge-1", "slow", t0 + k * 15_000 + 100 - 40_000, "http://s:1", t0 + k * 15_000 + 100);
    };
    for (const k of [0, 1, 2]) round(k);
    assert.deepEqual(conflicts.conflicts(t0 + 31_000), new Map());
    round(3);
    assert.deepEqual(conflicts.conflicts(t0 + 46_000), new Map([["edge-1", 2]]));
  });

  it("the directory passes on authentic heartbeats that name an incarnation, also those too old to move the URL", () => {
    const key = hmacKey("hb-1");
    const seen: string[] = [];
    const directory = new CollectorDirectory({
      collectors: {},
      ttlMs: TTL,
      keys: new KeyRing([key]),
      maxSkewMs: 60_000,
      conflicts: { observe: (node, incarnation, ts) => seen.push(`${node} ${incarnation} ${ts}`) },
    });
    const beat = (incarnation: string | undefined, ts: number, tamper?: string) => {
      const unsigned = { node: "edge-1", url: "http://10.0.0.7:4318", ts, key_id: key.id };
      const signed = incarnation === undefined ? unsigned : { ...unsigned, incarnation };
      const signature = signingKey(key).sign(heartbeatSigningText(signed));
      return JSON.stringify({ ...signed, ...(tamper === undefined ? {} : { incarnation: tamper }), signature });
    };
    const now = Date.now();
    assert.equal(directory.accept(beat("aaaa", now), now).status, 204);
    assert.equal(directory.accept(beat("bbbb", now - 5000), now).status, 409, "older than the URL it has");
    assert.equal(directory.accept(beat(undefined, now + 1), now).status, 204, "an older collector's v1 heartbeat");
    assert.equal(directory.accept(beat("aaaa", now + 2, "cccc"), now).status, 401, "incarnation not as signed");
    assert.equal(directory.accept(beat(undefined, now + 3, "cccc"), now).status, 401, "incarnation added to a v1");
    assert.equal(directory.accept(beat("a/b", now + 4), now).status, 400);
    assert.deepEqual(seen, [`edge-1 aaaa ${now}`, `edge-1 bbbb ${now - 5000}`]);
  });
});
