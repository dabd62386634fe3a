import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { batchId, type LogStream, SampleKind } from "../../proto/batch.js";
import { type Labels, labelsOf } from "../../proto/labels.js";
import type { LineFilter, LogBatch, RollupBatch, RollupPartial, SampleBatch, Store } from "../../storage/store.js";
import { StoreError } from "../../storage/values.js";
import { MAX_RECOUNTED_CELLS } from "../../storage/log-dedup.js";

// One suite, every store: what it checks is the contract in storage/store.ts. Each store's test file calls
// storeContract() with a factory that gives a fresh, migrated, empty store.

/** Retention for stores under test: the contract's retention test writes data 40 days old. */
export const TEST_RETENTION = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

// Two hours before the current hour: recent enough that no TTL removes it during the run, hour-aligned for
// the 1h rollups.
export const T0_MS = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
export const T0_NS = BigInt(T0_MS) * 1_000_000n;
const SEC = 1_000_000_000n;

export function logBatch(
  id: string,
  streams: { labels: [string, string][]; entries: [bigint, string, [string, string][]?][] }[],
  tenant = "acme",
): LogBatch {
  return {
    id,
    tenant,
    streams: streams.map((s) => ({
      labels: labelsOf(s.labels),
      entries: s.entries.map(([t, line, metadata]) => ({ timeUnixNano: t, line, metadata: labelsOf(metadata ?? []) })),
    })),
  };
}

function lines(streams: LogStream[]): string[] {
  return streams.flatMap((s) => s.entries.map((e) => e.line));
}

function plain(labels: Labels): Record<string, string> {
  return { ...labels };
}

const all = { startNs: T0_NS - 3600n * SEC, endNs: T0_NS + 3600n * SEC };

export function storeContract(name: string, open: () => Promise<Store>): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    before(async () => {
      store = await open();
      await store.appendLogs([
        logBatch("n1:1", [
          {
            labels: [
              ["service", "api"],
              ["level", "info"],
              ["node", "n1"],
            ],
            entries: [
              [T0_NS, "GET /items 200"],
              [T0_NS + 1n * SEC, "GET /orders 200", [["trace_id", "abc"]]],
              [T0_NS + 2n * SEC, "POST /orders 500 error"],
            ],
          },
          {
            labels: [
              ["service", "api"],
              ["level", "error"],
              ["node", "n1"],
            ],
            entries: [
              [T0_NS + 1n * SEC, "panic: nil pointer"],
              [T0_NS + 3n * SEC, "Error: timeout talking to db"],
            ],
          },
        ]),
        logBatch("n2:1", [
          {
            labels: [
              ["service", "worker"],
              ["level", "info"],
              ["node", "n2"],
            ],
            entries: [
              [T0_NS + 500_000_000n, "job started ✓ café 東京"],
              // An exact duplicate, stored or not, is read and counted once (as Loki merges identical entries).
              [T0_NS + 2n * SEC, "job done"],
              [T0_NS + 2n * SEC, "job done"],
            ],
          },
        ]),
        logBatch(
          "other:1",
          [
            {
              labels: [
                ["service", "api"],
                ["node", "x"],
              ],
              entries: [[T0_NS, "secret of another tenant"]],
            },
          ],
          "other-tenant",
        ),
      ]);
    });
    after(async () => {
      await store.close();
    });

    it("migrates again without error or change", async () => {
      await store.migrate();
      const streams = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=~", value: ".+" }],
        ...all,
        limit: 100,
        direction: "forward",
      });
      assert.equal(lines(streams).length, 7);
    });

    it("selects by every matcher type, with regexes anchored and a missing label equal to empty", async () => {
      const select = (matchers: Parameters<Store["selectLogs"]>[0]["matchers"]) =>
        store.selectLogs({ tenant: "acme", matchers, ...all, limit: 100, direction: "forward" });
      assert.equal(lines(await select([{ name: "service", op: "=", value: "api" }])).length, 5);
      assert.equal(lines(await select([{ name: "service", op: "!=", value: "api" }])).length, 2);
      assert.equal(
        lines(await select([{ name: "service", op: "=~", value: "ap" }])).length,
        0,
        "regex must be anchored",
      );
      assert.equal(lines(await select([{ name: "service", op: "=~", value: "ap.|work.*" }])).length, 7);
      assert.equal(
        lines(
          await select([
            { name: "level", op: "!~", value: "err.*" },
            { name: "node", op: "=", value: "n1" },
          ]),
        ).length,
        3,
      );
      assert.equal(
        lines(
          await select([
            { name: "service", op: "=", value: "api" },
            { name: "missing", op: "=", value: "" },
          ]),
        ).length,
        5,
      );
      assert.equal(
        lines(
          await select([
            { name: "service", op: "=", value: "api" },
            { name: "missing", op: "!=", value: "" },
          ]),
        ).length,
        0,
      );
    });

    it("returns streams with their labels, entries ordered by direction, and metadata", async () => {
      const forward = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "node", op: "=", value: "n1" }],
        ...all,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(
        forward.map((s) => plain(s.labels)),
        [
          { level: "error", node: "n1", service: "api" },
          { level: "info", node: "n1", service: "api" },
        ],
      );
      assert.deepEqual(
        forward[1]!.entries.map((e) => e.line),
        ["GET /items 200", "GET /orders 200", "POST /orders 500 error"],
      );
      assert.deepEqual(plain(forward[1]!.entries[1]!.metadata), { trace_id: "abc" });
      assert.equal(forward[1]!.entries[1]!.timeUnixNano, T0_NS + SEC);
      const backward = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "node", op: "=", value: "n1" }],
        ...all,
        limit: 100,
        direction: "backward",
      });
      assert.deepEqual(
        backward[1]!.entries.map((e) => e.line),
        ["POST /orders 500 error", "GET /orders 200", "GET /items 200"],
      );
    });

    it("keeps entries that share a timestamp in arrival order (batch cut time, then place in the batch), reversed backward", async () => {
      const at = T0_NS + 100n * SEC;
      const cut = (id: string, createdUnixNano: bigint, entries: string[]): LogBatch => ({
        ...logBatch(
          id,
          [{ labels: [["service", "order"]], entries: entries.map((line): [bigint, string] => [at, line]) }],
          "order",
        ),
        createdUnixNano,
      });
      // Written out of order: the batch cut first is appended last. Lines sort otherwise than they arrived.
      await store.appendLogs([cut("o:2", T0_NS + 2n, ["zeta", "alpha"]), cut("o:3", T0_NS + 3n, ["mid"])]);
      await store.appendLogs([cut("o:1", T0_NS + 1n, ["first", "b"])]);
      const read = async (direction: "forward" | "backward", limit = 100) =>
        lines(
          await store.selectLogs({
            tenant: "order",
            matchers: [{ name: "service", op: "=", value: "order" }],
            ...all,
            limit,
            direction,
          }),
        );
      assert.deepEqual(await read("forward"), ["first", "b", "zeta", "alpha", "mid"]);
      assert.deepEqual(await read("backward"), ["mid", "alpha", "zeta", "b", "first"]);
      assert.deepEqual(await read("forward", 3), ["first", "b", "zeta"]);
      assert.deepEqual(await read("backward", 2), ["mid", "alpha"]);
    });

    it("returns and counts an exact duplicate (same stream, timestamp and line) from another batch once", async () => {
      const dup = (
        id: string,
        createdUnixNano: bigint,
        entries: [bigint, string, [string, string][]?][],
      ): LogBatch => ({
        ...logBatch(id, [{ labels: [["service", "dups"]], entries }], "dups"),
        createdUnixNano,
      });
      await store.appendLogs([
        dup("d:1", 1n, [
          [T0_NS + 10n * SEC, "a"],
          [T0_NS + 10n * SEC, "b"],
        ]),
      ]);
      // A retried push: the same entries again in a later batch (with other metadata), and one new entry.
      await store.appendLogs([
        dup("d:2", 2n, [
          [T0_NS + 10n * SEC, "a", [["retry", "1"]]],
          [T0_NS + 10n * SEC, "b"],
          [T0_NS + 20n * SEC, "c"],
        ]),
      ]);
      const matchers = [{ name: "service", op: "=" as const, value: "dups" }];
      const read = async (direction: "forward" | "backward", limit: number) =>
        lines(await store.selectLogs({ tenant: "dups", matchers, ...all, limit, direction }));
      assert.deepEqual(await read("forward", 100), ["a", "b", "c"]);
      // The first page read holds repeats: the store reads on until the limit is met.
      assert.deepEqual(await read("forward", 3), ["a", "b", "c"]);
      assert.deepEqual(await read("backward", 2), ["c", "b"]);
      assert.deepEqual(await read("backward", 3), ["c", "b", "a"]);
      const window = { tenant: "dups", matchers, startNs: T0_NS, endNs: T0_NS + 60n * SEC, stepNs: 60n * SEC };
      const points = (series: { points: { count: number; bytes: number }[] }[]) =>
        series.map((s) => s.points.map((p) => [p.count, p.bytes]));
      assert.deepEqual(points(await store.countLogs(window)), [[[3, 3]]]);
      assert.deepEqual(points(await store.countLogs({ ...window, groupBy: ["service"] })), [[[3, 3]]]);
      // Split by metadata, the duplicate counts under the metadata of the copy kept (either one).
      const byMetadata = await store.countLogs({ ...window, byMetadata: true });
      assert.equal(
        byMetadata.reduce((n, s) => n + s.points.reduce((m, p) => m + p.count, 0), 0),
        3,
      );
    });

    it("counts each entry once when more steps hold duplicates than the store recounts one by one", async () => {
      const cells = MAX_RECOUNTED_CELLS + 5;
      const entries = Array.from({ length: cells }, (_, i): [bigint, string] => [T0_NS + BigInt(i) * SEC, `e${i}`]);
      const batch = (id: string, rows: [bigint, string][]) =>
        logBatch(id, [{ labels: [["service", "many-dups"]], entries: rows }], "many-dups");
      // Every entry twice, and one more at each second with another line, which counts apart.
      await store.appendLogs([batch("md:1", entries)]);
      await store.appendLogs([batch("md:2", [...entries, ...entries.map(([t]): [bigint, string] => [t, "other"])])]);
      const window = {
        tenant: "many-dups",
        matchers: [{ name: "service", op: "=" as const, value: "many-dups" }],
        startNs: T0_NS,
        endNs: T0_NS + BigInt(cells) * SEC,
        stepNs: SEC,
      };
      for (const series of [
        await store.countLogs(window),
        await store.countLogs({ ...window, groupBy: ["service"] }),
      ]) {
        assert.equal(series.length, 1);
        assert.equal(series[0]!.points.length, cells);
        assert.ok(series[0]!.points.every((p) => p.count === 2));
      }
    });

    it("applies the limit over all streams in time order, both directions", async () => {
      const matchers = [{ name: "service", op: "=~" as const, value: ".+" }];
      const newest = await store.selectLogs({ tenant: "acme", matchers, ...all, limit: 2, direction: "backward" });
      assert.deepEqual(lines(newest).sort(), ["Error: timeout talking to db", "POST /orders 500 error"].sort());
      const oldest = await store.selectLogs({ tenant: "acme", matchers, ...all, limit: 2, direction: "forward" });
      assert.deepEqual(lines(oldest).sort(), ["GET /items 200", "job started ✓ café 東京"].sort());
      assert.deepEqual(
        await store.selectLogs({ tenant: "acme", matchers, ...all, limit: 0, direction: "forward" }),
        [],
      );
    });

    it("treats the time range as [start, end) to the nanosecond", async () => {
      const matchers = [{ name: "node", op: "=" as const, value: "n1" }];
      const got = await store.selectLogs({
        tenant: "acme",
        matchers,
        startNs: T0_NS + SEC,
        endNs: T0_NS + 3n * SEC,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(lines(got).sort(), ["GET /orders 200", "POST /orders 500 error", "panic: nil pointer"].sort());
      const one = await store.selectLogs({
        tenant: "acme",
        matchers,
        startNs: T0_NS + SEC,
        endNs: T0_NS + SEC + 1n,
        limit: 100,
        direction: "forward",
      });
      assert.equal(lines(one).length, 2);
    });

    it("applies line filters: contains, not contains, regex, negated regex, and `or`", async () => {
      const f = (lineFilters: Parameters<Store["selectLogs"]>[0]["lineFilters"]) =>
        store
          .selectLogs({
            tenant: "acme",
            matchers: [{ name: "service", op: "=~", value: ".+" }],
            lineFilters,
            ...all,
            limit: 100,
            direction: "forward",
          })
          .then(lines);
      assert.deepEqual((await f([{ op: "|=", values: ["orders"] }])).sort(), [
        "GET /orders 200",
        "POST /orders 500 error",
      ]);
      assert.deepEqual(
        await f([
          { op: "|=", values: ["orders"] },
          { op: "!=", values: ["500"] },
        ]),
        ["GET /orders 200"],
      );
      assert.deepEqual((await f([{ op: "|~", values: ["(?i)error"] }])).sort(), [
        "Error: timeout talking to db",
        "POST /orders 500 error",
      ]);
      assert.deepEqual((await f([{ op: "!~", values: ["^GET|^job"] }])).sort(), [
        "Error: timeout talking to db",
        "POST /orders 500 error",
        "panic: nil pointer",
      ]);
      assert.deepEqual((await f([{ op: "|=", values: ["panic", "timeout"] }])).sort(), [
        "Error: timeout talking to db",
        "panic: nil pointer",
      ]);
      assert.deepEqual(await f([{ op: "|=", values: ["café 東京"] }]), ["job started ✓ café 東京"]);
      assert.equal((await f([{ op: "|=", values: ["Error"] }])).length, 1, "contains is case-sensitive");
    });

    it("keeps tenants apart on every read", async () => {
      const matchers = [{ name: "service", op: "=" as const, value: "api" }];
      assert.deepEqual(
        lines(await store.selectLogs({ tenant: "other-tenant", matchers, ...all, limit: 100, direction: "forward" })),
        ["secret of another tenant"],
      );
      assert.ok(
        !lines(await store.selectLogs({ tenant: "acme", matchers, ...all, limit: 100, direction: "forward" })).includes(
          "secret of another tenant",
        ),
      );
      const range = { startMs: T0_MS - 3_600_000, endMs: T0_MS + 3_600_000 };
      assert.ok(
        !(await store.labelValues({ tenant: "acme", signal: "logs", selectors: [], ...range }, "node")).includes("x"),
      );
      assert.deepEqual(
        await store.labelValues({ tenant: "nobody", signal: "logs", selectors: [], ...range }, "node"),
        [],
      );
    });

    it("answers series, label names and label values from the index", async () => {
      const range = { startMs: T0_MS - 3_600_000, endMs: T0_MS + 3_600_000 };
      assert.deepEqual(await store.labelNames({ tenant: "acme", signal: "logs", selectors: [], ...range }), [
        "level",
        "node",
        "service",
      ]);
      assert.deepEqual(await store.labelValues({ tenant: "acme", signal: "logs", selectors: [], ...range }, "level"), [
        "error",
        "info",
      ]);
      assert.deepEqual(
        await store.labelValues(
          { tenant: "acme", signal: "logs", selectors: [[{ name: "node", op: "=", value: "n2" }]], ...range },
          "service",
        ),
        ["worker"],
      );
      const series = await store.series({
        tenant: "acme",
        signal: "logs",
        selectors: [[{ name: "level", op: "=", value: "error" }], [{ name: "service", op: "=", value: "worker" }]],
        ...range,
      });
      assert.deepEqual(series.map(plain), [
        { level: "error", node: "n1", service: "api" },
        { level: "info", node: "n2", service: "worker" },
      ]);
      const later = { startMs: T0_MS + 7_200_000, endMs: T0_MS + 10_800_000 };
      assert.deepEqual(
        await store.labelNames({ tenant: "acme", signal: "logs", selectors: [], ...later }),
        [],
        "streams outside the range are not listed",
      );
    });

    it("counts entries and bytes per stream per step", async () => {
      const counted = await store.countLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=~", value: ".+" }],
        startNs: T0_NS,
        endNs: T0_NS + 4n * SEC,
        stepNs: 2n * SEC,
      });
      const byService = counted.map((s) => ({
        labels: plain(s.labels),
        points: s.points.map((p) => [p.startNs - T0_NS, p.count, p.bytes]),
      }));
      assert.deepEqual(byService, [
        {
          labels: { level: "error", node: "n1", service: "api" },
          points: [
            [0n, 1, 18],
            [2n * SEC, 1, 28],
          ],
        },
        {
          labels: { level: "info", node: "n1", service: "api" },
          points: [
            [0n, 2, 29],
            [2n * SEC, 1, 22],
          ],
        },
        {
          labels: { level: "info", node: "n2", service: "worker" },
          points: [
            [0n, 1, Buffer.byteLength("job started ✓ café 東京")],
            [2n * SEC, 1, 8],
          ],
        },
      ]);
      const filtered = await store.countLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "api" }],
        lineFilters: [{ op: "|=", values: ["orders"] }],
        startNs: T0_NS,
        endNs: T0_NS + 4n * SEC,
        stepNs: 4n * SEC,
      });
      assert.deepEqual(
        filtered.map((s) => s.points.map((p) => p.count)),
        [[2]],
      );
      const countsOnly = await store.countLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=~", value: ".+" }],
        startNs: T0_NS,
        endNs: T0_NS + 4n * SEC,
        stepNs: 2n * SEC,
        bytes: false,
      });
      assert.deepEqual(
        countsOnly.map((s) => ({
          labels: plain(s.labels),
          points: s.points.map((p) => [p.startNs - T0_NS, p.count, p.bytes]),
        })),
        byService.map((s) => ({ ...s, points: s.points.map(([start, count]) => [start, count, 0]) })),
      );
    });

    it("splits counts by structured metadata when asked, metadata labels added to the stream's (suffixed on a clash)", async () => {
      await store.appendLogs([
        logBatch("n7:1", [
          {
            labels: [
              ["service", "split"],
              ["zone", "stream"],
            ],
            entries: [
              [T0_NS, "a", [["trace", "t1"]]],
              [T0_NS + 1n, "bb", [["trace", "t1"]]],
              [
                T0_NS + 2n,
                "ccc",
                [
                  ["trace", "t2"],
                  ["zone", "meta"],
                ],
              ],
              [T0_NS + 3n, "dddd"],
            ],
          },
        ]),
      ]);
      const select = {
        tenant: "acme",
        matchers: [{ name: "service", op: "=" as const, value: "split" }],
        startNs: T0_NS,
        endNs: T0_NS + SEC,
        stepNs: SEC,
      };
      const whole = await store.countLogs(select);
      assert.deepEqual(
        whole.map((s) => [plain(s.labels), s.points.map((p) => [p.count, p.bytes])]),
        [[{ service: "split", zone: "stream" }, [[4, 10]]]],
      );
      const split = await store.countLogs({ ...select, byMetadata: true });
      assert.deepEqual(
        split.map((s) => [plain(s.labels), s.points.map((p) => [p.count, p.bytes])]),
        [
          [{ service: "split", trace: "t1", zone: "stream" }, [[2, 3]]],
          [{ service: "split", trace: "t2", zone: "stream", zone_extracted: "meta" }, [[1, 3]]],
          [{ service: "split", zone: "stream" }, [[1, 4]]],
        ],
      );
    });

    it("sums counts by labels taken from the stream, else from structured metadata, empty ones absent", async () => {
      await store.appendLogs([
        logBatch("n7:2", [
          {
            labels: [
              ["service", "grouped"],
              ["zone", "a"],
            ],
            entries: [
              [T0_NS, "a", [["trace", "t1"]]],
              // The stream's zone wins over the metadata's (which LogQL would call zone_extracted).
              [T0_NS + 1n, "bb", [["zone", "meta"]]],
              [T0_NS + SEC, "ccc"],
            ],
          },
          {
            labels: [["service", "grouped"]],
            entries: [
              [
                T0_NS,
                "dddd",
                [
                  ["zone", "b-meta"],
                  ["trace", "t1"],
                ],
              ],
              [T0_NS + 2n, "e"],
              [T0_NS + SEC, "ff", [["trace", "t2"]]],
            ],
          },
        ]),
      ]);
      const select = {
        tenant: "acme",
        matchers: [{ name: "service", op: "=" as const, value: "grouped" }],
        startNs: T0_NS,
        endNs: T0_NS + 2n * SEC,
        stepNs: SEC,
      };
      const summed = async (groupBy: string[], lineFilters: LineFilter[] = []) =>
        (await store.countLogs({ ...select, groupBy, lineFilters })).map((s) => [
          plain(s.labels),
          s.points.map((p) => [p.startNs - T0_NS, p.count, p.bytes]),
        ]);
      // Ordered by label text, in which "{}" comes last.
      assert.deepEqual(await summed(["zone"]), [
        [
          { zone: "a" },
          [
            [0n, 2, 3],
            [SEC, 1, 3],
          ],
        ],
        [{ zone: "b-meta" }, [[0n, 1, 4]]],
        [
          {},
          [
            [0n, 1, 1],
            [SEC, 1, 2],
          ],
        ],
      ]);
      assert.deepEqual(await summed(["zone", "trace"]), [
        [{ trace: "t1", zone: "a" }, [[0n, 1, 1]]],
        [{ trace: "t1", zone: "b-meta" }, [[0n, 1, 4]]],
        [{ trace: "t2" }, [[SEC, 1, 2]]],
        [
          { zone: "a" },
          [
            [0n, 1, 2],
            [SEC, 1, 3],
          ],
        ],
        [{}, [[0n, 1, 1]]],
      ]);
      assert.deepEqual(await summed([]), [
        [
          {},
          [
            [0n, 4, 8],
            [SEC, 2, 5],
          ],
        ],
      ]);
      assert.deepEqual(await summed(["zone"], [{ op: "|~", values: ["^[a-c]"] }]), [
        [
          { zone: "a" },
          [
            [0n, 2, 3],
            [SEC, 1, 3],
          ],
        ],
      ]);
    });

    it("leaves counts unchanged when a batch is appended again, alone or among new ones", async () => {
      const batch = logBatch("n3:7", [
        {
          labels: [["service", "replay"]],
          entries: [
            [T0_NS, "once"],
            [T0_NS + SEC, "twice?"],
          ],
        },
      ]);
      assert.deepEqual(await store.appendLogs([batch]), { written: 1, duplicates: 0, rows: 2 });
      assert.deepEqual(await store.appendLogs([batch]), { written: 0, duplicates: 1, rows: 0 });
      const fresh = logBatch("n3:8", [{ labels: [["service", "replay"]], entries: [[T0_NS + 2n * SEC, "new"]] }]);
      assert.deepEqual(await store.appendLogs([batch, fresh]), { written: 1, duplicates: 1, rows: 1 });
      const got = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "replay" }],
        ...all,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(lines(got), ["once", "twice?", "new"]);
    });

    it("writes a batch listed twice in one call once", async () => {
      const batch = logBatch("n5:1", [{ labels: [["service", "twice-in-one-call"]], entries: [[T0_NS, "one"]] }]);
      assert.deepEqual(await store.appendLogs([batch, batch]), { written: 1, duplicates: 1, rows: 1 });
      const got = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "twice-in-one-call" }],
        ...all,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(lines(got), ["one"]);
    });

    it("stores the batches of one node's incarnations that count the same sequences, each replay once", async () => {
      const batch = (incarnation: string, at: bigint, line: string) =>
        logBatch(batchId({ tenant: "acme", nodeId: "reimaged", sequence: 1, incarnation }), [
          { labels: [["service", "incarnations"]], entries: [[T0_NS + at, line]] },
        ]);
      const older = batch("", 0n, "from a collector before incarnations");
      const first = batch("1f2e3d4c5b6a7980", SEC, "first disk buffer");
      const wiped = batch("0a1b2c3d4e5f6071", 2n * SEC, "after the buffer was wiped");
      assert.deepEqual(await store.appendLogs([older, first]), { written: 2, duplicates: 0, rows: 2 });
      assert.deepEqual(await store.appendLogs([wiped, first, older]), { written: 1, duplicates: 2, rows: 1 });
      const got = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "incarnations" }],
        ...all,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(lines(got), [
        "from a collector before incarnations",
        "first disk buffer",
        "after the buffer was wiped",
      ]);
    });

    it("lists a stream for any range its appends span, even with none inside", async () => {
      const hour = 3600n * SEC;
      await store.appendLogs([
        logBatch("n6:1", [{ labels: [["service", "sparse"]], entries: [[T0_NS - 2n * hour, "early"]] }]),
      ]);
      await store.appendLogs([
        logBatch("n6:2", [{ labels: [["service", "sparse"]], entries: [[T0_NS + 2n * hour, "late"]] }]),
      ]);
      const inside = { startMs: T0_MS - 3_600_000, endMs: T0_MS + 3_600_000 };
      assert.deepEqual(
        await store.labelValues(
          { tenant: "acme", signal: "logs", selectors: [[{ name: "service", op: "=", value: "sparse" }]], ...inside },
          "service",
        ),
        ["sparse"],
      );
      const after = { startMs: T0_MS + 3 * 3_600_000, endMs: T0_MS + 4 * 3_600_000 };
      assert.deepEqual(
        await store.labelValues(
          { tenant: "acme", signal: "logs", selectors: [[{ name: "service", op: "=", value: "sparse" }]], ...after },
          "service",
        ),
        [],
      );
    });

    it("refuses an invalid regular expression with a StoreError that is not transient", async () => {
      const bad = (select: Promise<unknown>) =>
        assert.rejects(select, (err: unknown) => err instanceof StoreError && !err.transient);
      await bad(
        store.selectLogs({
          tenant: "acme",
          matchers: [{ name: "service", op: "=~", value: "(unclosed" }],
          ...all,
          limit: 10,
          direction: "forward",
        }),
      );
      await bad(
        store.selectLogs({
          tenant: "acme",
          matchers: [{ name: "service", op: "=", value: "api" }],
          lineFilters: [{ op: "|~", values: ["[z-a]"] }],
          ...all,
          limit: 10,
          direction: "forward",
        }),
      );
    });

    it("writes a batch that spans days whole, and replays it as a no-op", async () => {
      const day = 86_400n * SEC;
      const batch = logBatch("n4:1", [
        {
          labels: [["service", "midnight"]],
          entries: [
            [T0_NS - day, "yesterday"],
            [T0_NS, "today"],
            [T0_NS + day, "tomorrow"],
          ],
        },
      ]);
      await store.appendLogs([batch]);
      await store.appendLogs([batch]);
      const got = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "midnight" }],
        startNs: T0_NS - 2n * day,
        endNs: T0_NS + 2n * day,
        limit: 100,
        direction: "forward",
      });
      assert.deepEqual(lines(got), ["yesterday", "today", "tomorrow"]);
    });

    it("stores samples with their kind, special values, and idempotent replays", async () => {
      const batch: SampleBatch = {
        id: "n1:m1",
        tenant: "acme",
        series: [
          {
            name: "http_requests_total",
            labels: labelsOf([
              ["node", "n1"],
              ["code", "200"],
            ]),
            kind: SampleKind.Counter,
            points: [0, 1, 2].map((i) => ({ timeUnixMs: T0_MS + i * 15_000, value: 10 * i })),
          },
          {
            name: "temperature_celsius",
            labels: labelsOf([["node", "n1"]]),
            kind: SampleKind.Gauge,
            points: [NaN, Infinity, -Infinity, -0.5].map((value, i) => ({ timeUnixMs: T0_MS + i * 1000, value })),
          },
        ],
      };
      assert.deepEqual(await store.appendSamples([batch]), { written: 1, duplicates: 0, rows: 7 });
      assert.deepEqual(await store.appendSamples([batch]), { written: 0, duplicates: 1, rows: 0 });
      const got = await store.selectSamples({
        tenant: "acme",
        matchers: [{ name: "node", op: "=", value: "n1" }],
        startMs: T0_MS,
        endMs: T0_MS + 30_000,
      });
      assert.deepEqual(
        got.map((s) => ({
          labels: plain(s.labels),
          kind: s.kind,
          points: s.points.map((p) => [p.timeMs - T0_MS, p.value]),
        })),
        [
          {
            labels: { __name__: "http_requests_total", code: "200", node: "n1" },
            kind: SampleKind.Counter,
            points: [
              [0, 0],
              [15_000, 10],
            ],
          },
          {
            labels: { __name__: "temperature_celsius", node: "n1" },
            kind: SampleKind.Gauge,
            points: [
              [0, NaN],
              [1000, Infinity],
              [2000, -Infinity],
              [3000, -0.5],
            ],
          },
        ],
      );
      const range = { startMs: T0_MS - 60_000, endMs: T0_MS + 60_000 };
      assert.deepEqual(
        await store.labelValues({ tenant: "acme", signal: "metrics", selectors: [], ...range }, "__name__"),
        ["http_requests_total", "temperature_celsius"],
      );
      assert.deepEqual(
        await store.labelNames({
          tenant: "acme",
          signal: "metrics",
          selectors: [[{ name: "__name__", op: "=", value: "http_requests_total" }]],
          ...range,
        }),
        ["__name__", "code", "node"],
      );
    });

    it("reads back every float bit for bit and in time order, over more rows than one read chunk", async () => {
      // Edge values first, then doubles from random bit patterns (NaN patterns aside: a NaN's payload is not kept).
      const special = [
        NaN,
        Infinity,
        -Infinity,
        -0,
        0,
        5e-324,
        -5e-324,
        Number.MAX_VALUE,
        -Number.MAX_VALUE,
        2 ** 53 + 2,
        0.1 + 0.2,
        1 / 3,
        -1e-300,
        1e300,
      ];
      const bits = new DataView(new ArrayBuffer(8));
      let state = 0x9e3779b97f4a7c15n;
      const randomDouble = (): number => {
        for (;;) {
          state = (state * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
          bits.setBigUint64(0, state);
          const value = bits.getFloat64(0);
          if (!Number.isNaN(value)) return value;
        }
      };
      // 30 series of 300 samples: 9000 rows, which DuckDB returns in chunks of 2048 that cut series in two.
      const expected = Array.from({ length: 30 }, (_, s) => ({
        labels: { __name__: "bits_gauge", series: String(s).padStart(2, "0") },
        points: Array.from({ length: 300 }, (_, i): [number, number] => [
          i * 1000,
          s === 0 && i < special.length ? special[i]! : randomDouble(),
        ]),
      }));
      // Written newest first and across batches, so that only the read's ordering can put them in time order.
      const batches: SampleBatch[] = [2, 1, 0].map((part) => ({
        id: `bits:${part}`,
        tenant: "acme",
        series: expected.map((e) => ({
          name: "bits_gauge",
          labels: labelsOf([["series", e.labels.series]]),
          kind: SampleKind.Gauge,
          points: e.points
            .filter((_, i) => i % 3 === part)
            .reverse()
            .map(([t, value]) => ({ timeUnixMs: T0_MS + t, value })),
        })),
      }));
      await store.appendSamples(batches);
      const got = await store.selectSamples({
        tenant: "acme",
        matchers: [{ name: "__name__", op: "=", value: "bits_gauge" }],
        startMs: T0_MS,
        endMs: T0_MS + 300_000,
      });
      // deepStrictEqual compares numbers with Object.is: -0 is not 0, NaN is NaN.
      assert.deepEqual(
        got.map((s) => ({ labels: plain(s.labels), points: s.points.map((p) => [p.timeMs - T0_MS, p.value]) })),
        expected,
      );

      const bucket = {
        name: "bits_rollup",
        labels: labelsOf([]),
        kind: SampleKind.Gauge,
        resolution: "1m" as const,
        lastTimeMs: T0_MS,
      };
      await store.appendRollups([
        {
          id: "bits:r",
          tenant: "acme",
          partials: [
            {
              ...bucket,
              bucketStartMs: T0_MS,
              min: -Infinity,
              max: Number.MAX_VALUE,
              sum: 0.1 + 0.2,
              count: 2 ** 40,
              last: -0,
              increase: 5e-324,
            },
            {
              ...bucket,
              bucketStartMs: T0_MS + 60_000,
              min: -0,
              max: Infinity,
              sum: -1e300,
              count: 1,
              last: 2 ** 53 + 2,
              increase: 1 / 3,
            },
          ],
        },
      ]);
      const rollups = await store.selectRollups({
        tenant: "acme",
        matchers: [{ name: "__name__", op: "=", value: "bits_rollup" }],
        resolution: "1m",
        startMs: T0_MS,
        endMs: T0_MS + 120_000,
      });
      assert.deepEqual(
        rollups.map((r) => r.buckets),
        [
          [
            {
              startMs: T0_MS,
              min: -Infinity,
              max: Number.MAX_VALUE,
              sum: 0.1 + 0.2,
              count: 2 ** 40,
              last: -0,
              increase: 5e-324,
            },
            {
              startMs: T0_MS + 60_000,
              min: -0,
              max: Infinity,
              sum: -1e300,
              count: 1,
              last: 2 ** 53 + 2,
              increase: 1 / 3,
            },
          ],
        ],
      );
    });

    it("merges rollup partials from several batches per bucket, and ignores replays", async () => {
      const partial = (bucketStartMs: number, values: Partial<RollupPartial>): RollupPartial => ({
        name: "cpu_seconds_total",
        labels: labelsOf([["node", "n9"]]),
        kind: SampleKind.Counter,
        resolution: "1m",
        bucketStartMs,
        min: 0,
        max: 0,
        sum: 0,
        count: 0,
        last: 0,
        lastTimeMs: bucketStartMs,
        increase: 0,
        ...values,
      });
      const first: RollupBatch = {
        id: "n9:1",
        tenant: "acme",
        partials: [
          partial(T0_MS, { min: 1, max: 5, sum: 6, count: 2, last: 5, lastTimeMs: T0_MS + 20_000, increase: 4 }),
          partial(T0_MS, {
            resolution: "1h",
            min: 1,
            max: 5,
            sum: 6,
            count: 2,
            last: 5,
            lastTimeMs: T0_MS + 20_000,
            increase: 4,
          }),
        ],
      };
      const second: RollupBatch = {
        id: "n9:2",
        tenant: "acme",
        partials: [
          partial(T0_MS, { min: 0.5, max: 3, sum: 3.5, count: 2, last: 3, lastTimeMs: T0_MS + 50_000, increase: 3 }),
          partial(T0_MS + 60_000, {
            min: 4,
            max: 4,
            sum: 4,
            count: 1,
            last: 4,
            lastTimeMs: T0_MS + 65_000,
            increase: 1,
          }),
          partial(T0_MS, {
            resolution: "1h",
            min: 0.5,
            max: 4,
            sum: 7.5,
            count: 3,
            last: 4,
            lastTimeMs: T0_MS + 65_000,
            increase: 4,
          }),
        ],
      };
      await store.appendRollups([first, second]);
      assert.deepEqual(await store.appendRollups([second]), { written: 0, duplicates: 1, rows: 0 });
      const matchers = [{ name: "__name__", op: "=" as const, value: "cpu_seconds_total" }];
      const minute = await store.selectRollups({
        tenant: "acme",
        matchers,
        resolution: "1m",
        startMs: T0_MS,
        endMs: T0_MS + 120_000,
      });
      assert.equal(minute.length, 1);
      assert.deepEqual(minute[0]!.buckets, [
        { startMs: T0_MS, min: 0.5, max: 5, sum: 9.5, count: 4, last: 3, increase: 7 },
        { startMs: T0_MS + 60_000, min: 4, max: 4, sum: 4, count: 1, last: 4, increase: 1 },
      ]);
      const hour = await store.selectRollups({
        tenant: "acme",
        matchers,
        resolution: "1h",
        startMs: T0_MS,
        endMs: T0_MS + 3_600_000,
      });
      assert.deepEqual(hour[0]!.buckets, [
        { startMs: T0_MS, min: 0.5, max: 5, sum: 13.5, count: 5, last: 4, increase: 8 },
      ]);
      const outside = await store.selectRollups({
        tenant: "acme",
        matchers,
        resolution: "1m",
        startMs: T0_MS + 60_000,
        endMs: T0_MS + 120_000,
      });
      assert.deepEqual(
        outside[0]!.buckets.map((b) => b.startMs),
        [T0_MS + 60_000],
      );
    });

    it("round-trips unicode and control characters in labels, lines and metadata", async () => {
      const weird = "tab\there \"quoted\" back\\slash 'single' \n newline é 🧪 \u0001";
      await store.appendLogs([
        logBatch("u:1", [
          {
            labels: [
              ["service", "unicode"],
              ["weird", weird],
            ],
            entries: [[T0_NS, weird, [["k", weird]]]],
          },
        ]),
      ]);
      const got = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "weird", op: "=", value: weird }],
        ...all,
        limit: 10,
        direction: "forward",
      });
      assert.equal(got.length, 1);
      assert.equal(got[0]!.labels["weird"], weird);
      assert.equal(got[0]!.entries[0]!.line, weird);
      assert.equal(got[0]!.entries[0]!.metadata["k"], weird);
    });

    it("keeps metric family metadata by distinct value with the time it was last seen, per tenant", async () => {
      const requests = (help: string) => ({ name: "http_requests_total", type: "counter" as const, help, unit: "" });
      const latency = { name: "req_duration_seconds", type: "histogram" as const, help: "Latency", unit: "seconds" };
      const batches = [
        { tenant: "acme", seenMs: T0_MS, metadata: [requests("Requests"), latency] },
        { tenant: "acme", seenMs: T0_MS + 60_000, metadata: [requests("Requests")] },
        {
          tenant: "acme",
          seenMs: T0_MS + 120_000,
          metadata: [requests("Requests served"), requests("Requests served")],
        },
        { tenant: "other", seenMs: T0_MS, metadata: [requests("Other tenant's")] },
      ];
      await store.appendMetadata(batches);
      await store.appendMetadata(batches.slice(0, 2));
      const range = { startMs: T0_MS - 1000, endMs: T0_MS + 3_600_000 };
      assert.deepEqual(await store.metricMetadata({ tenant: "acme", ...range }), [
        requests("Requests served"),
        requests("Requests"),
        latency,
      ]);
      assert.deepEqual(await store.metricMetadata({ tenant: "acme", ...range, metric: "req_duration_seconds" }), [
        latency,
      ]);
      assert.deepEqual(
        await store.metricMetadata({ tenant: "acme", startMs: T0_MS + 90_000, endMs: range.endMs }),
        [requests("Requests served")],
        "last seen before the range",
      );
      assert.deepEqual(await store.metricMetadata({ tenant: "other", ...range }), [requests("Other tenant's")]);
      assert.deepEqual(await store.metricMetadata({ tenant: "nobody", ...range }), []);
    });

    it("deletes data older than the retention", async () => {
      const old = T0_NS - 40n * 86_400n * SEC;
      await store.appendLogs([
        logBatch("old:1", [
          {
            labels: [["service", "ancient"]],
            entries: [
              [old, "from long ago"],
              [T0_NS, "recent"],
            ],
          },
        ]),
      ]);
      await store.appendSamples([
        {
          id: "old:m",
          tenant: "acme",
          series: [
            {
              name: "ancient_metric",
              labels: labelsOf([]),
              kind: SampleKind.Gauge,
              points: [
                { timeUnixMs: Number(old / 1_000_000n), value: 1 },
                { timeUnixMs: T0_MS, value: 2 },
              ],
            },
          ],
        },
      ]);
      await store.enforceRetention(T0_MS + 60_000);
      const logs = await store.selectLogs({
        tenant: "acme",
        matchers: [{ name: "service", op: "=", value: "ancient" }],
        startNs: old - SEC,
        endNs: T0_NS + SEC,
        limit: 10,
        direction: "forward",
      });
      assert.deepEqual(lines(logs), ["recent"]);
      const samples = await store.selectSamples({
        tenant: "acme",
        matchers: [{ name: "__name__", op: "=", value: "ancient_metric" }],
        startMs: Number(old / 1_000_000n) - 1000,
        endMs: T0_MS + 1000,
      });
      assert.deepEqual(
        samples[0]!.points.map((p) => p.value),
        [2],
      );
    });
  });
}
