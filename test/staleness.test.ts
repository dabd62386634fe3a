import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { rollupBatch } from "../aggregator/rollup.js";
import { SampleKind, type Series } from "../proto/batch.js";
import { labelsOf } from "../proto/labels.js";
import { decodeBatch, encodeBatch } from "../proto/codec.js";
import { isStaleMarker, STALE_NAN } from "../proto/staleness.js";
import { instantQuery } from "../query/promql/evaluation/evaluator.js";
import { parsePromql } from "../query/promql/syntax/parser.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { DuckDBStore } from "../storage/duckdb.js";
import type { Store } from "../storage/store.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";
import { TEST_RETENTION } from "./helpers/store-contract.js";

// Prometheus's staleness marker end to end: through the batch codec as the collector writes it, into each
// store as the aggregator appends it, and out through PromQL, which must drop the series at the marker (not
// five minutes later) while an ordinary NaN stays a value.

const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;

const series = (name: string, values: number[]): Series => ({
  name,
  labels: labelsOf([["job", "node"]]),
  kind: SampleKind.Gauge,
  points: values.map((value, i) => ({ timeUnixMs: T0 + i * 15_000, value })),
});

function staleSuite(name: string, open: () => Promise<Store>, reopen?: (store: Store) => Promise<Store>): void {
  describe(`staleness markers on ${name}`, () => {
    it("keep their bits through the codec and the store, and end a series for PromQL at the marker", async () => {
      let store = await open();
      const written = encodeBatch({
        tenant: "acme",
        nodeId: "edge-1",
        site: "",
        region: "",
        sequence: 1,
        incarnation: "0123456789abcdef",
        createdUnixNano: 0n,
        streams: [],
        series: [series("vanished", [1, 2, STALE_NAN]), series("not_a_number", [1, 2, NaN])],
      });
      const batch = decodeBatch(written);
      await store.appendSamples([{ id: "edge-1:1", tenant: "acme", series: batch.series }]);
      await store.appendRollups([{ id: "edge-1:1", tenant: "acme", partials: rollupBatch(batch.series) }]);
      if (reopen) store = await reopen(store);
      try {
        const read = await store.selectSamples({
          tenant: "acme",
          matchers: [{ name: "job", op: "=", value: "node" }],
          startMs: T0,
          endMs: T0 + 60_000,
        });
        assert.deepEqual(
          read.map((s) => [s.labels["__name__"], s.points.map((p) => isStaleMarker(p.value))]),
          [
            ["not_a_number", [false, false, false]],
            ["vanished", [false, false, true]],
          ],
        );
        const query = async (expr: string, timeMs: number) => {
          const value = await instantQuery({ store, tenant: "acme" }, parsePromql(expr), timeMs);
          assert.equal(value.type, "vector");
          return value.samples.map((s) => [s.labels["__name__"] ?? "", s.value]);
        };
        // Before the marker both series answer; from the marker on only the NaN one does, with NaN.
        assert.deepEqual(await query('{job="node"}', T0 + 29_000), [
          ["not_a_number", 2],
          ["vanished", 2],
        ]);
        assert.deepEqual(await query('{job="node"}', T0 + 30_000), [["not_a_number", NaN]]);
        assert.deepEqual(await query('{job="node"}', T0 + 200_000), [["not_a_number", NaN]]);
        // Range functions see the values and never the marker; the raw samples answer (a marker is a NaN to rollups).
        assert.deepEqual(await query("count_over_time(vanished[1m])", T0 + 45_000), [["", 2]]);
        assert.deepEqual(await query("count_over_time(not_a_number[1m])", T0 + 45_000), [["", 3]]);
        assert.deepEqual(await query("last_over_time(vanished[1m])", T0 + 45_000), [["vanished", 2]]);
      } finally {
        await store.close();
      }
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), "bifrost-stale-"));
after(() => rmSync(dir, { recursive: true, force: true }));

staleSuite(
  "DuckDB (checkpointed to disk and reopened)",
  async () => {
    const store = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: TEST_RETENTION });
    await store.migrate();
    return store;
  },
  async (store) => {
    await store.close();
    const again = new DuckDBStore({ path: join(dir, "bifrost.duckdb"), retention: TEST_RETENTION });
    await again.migrate();
    return again;
  },
);

staleSuite("ClickHouse", async () => {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("stale"),
    retention: TEST_RETENTION,
  });
  await store.migrate();
  return store;
});
