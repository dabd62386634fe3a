import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FleetRecord } from "../storage/fleet-records.js";
import type { Store } from "../storage/store.js";
import { onBothStores } from "./helpers/loki-http.js";

// The fleet server's records through the Store contract, on the real ClickHouse engine and on DuckDB: versions,
// removal, kinds kept apart, large writes, and what a second process opening the same store reads back.

onBothStores("fleetrec", (name, open) => {
  describe(`${name} fleet records`, () => {
    let store: Store;
    before(async () => {
      store = await open();
    });
    after(() => store.close());

    const record = (id: string, updatedMs: number, body: object | "", kind: FleetRecord["kind"] = "agent") => ({
      kind,
      id,
      updatedMs,
      body: body === "" ? "" : JSON.stringify(body),
    });

    it("keeps the newest version of each record, whatever order versions arrive in", async () => {
      await store.putFleetRecords!([record("a", 10, { v: 1 }), record("b", 10, { v: 1 })]);
      await store.putFleetRecords!([record("a", 20, { v: 2 })]);
      await store.putFleetRecords!([record("b", 5, { v: 0 })]);
      const got = await store.fleetRecords!("agent");
      assert.deepEqual(
        got.map((r) => [r.id, r.updatedMs, JSON.parse(r.body)]),
        [
          ["a", 20, { v: 2 }],
          ["b", 10, { v: 1 }],
        ],
      );
    });

    it("reads one record by id, and kinds do not mix", async () => {
      await store.putFleetRecords!([record("a", 30, { rollout: true }, "rollout")]);
      assert.deepEqual(
        (await store.fleetRecords!("agent", "a")).map((r) => JSON.parse(r.body)),
        [{ v: 2 }],
      );
      assert.deepEqual(
        (await store.fleetRecords!("rollout")).map((r) => [r.id, JSON.parse(r.body)]),
        [["a", { rollout: true }]],
      );
      assert.deepEqual(await store.fleetRecords!("state"), []);
    });

    it("removes a record with an empty body, and a later version brings it back", async () => {
      await store.putFleetRecords!([record("b", 40, "")]);
      assert.deepEqual(
        (await store.fleetRecords!("agent")).map((r) => r.id),
        ["a"],
      );
      await store.putFleetRecords!([record("b", 50, { v: 3 })]);
      assert.deepEqual(
        (await store.fleetRecords!("agent")).map((r) => r.id),
        ["a", "b"],
      );
    });

    it("writes thousands of records in one call, the same id twice keeping the newer", async () => {
      const many = Array.from({ length: 3000 }, (_, i) => record(`n${String(i).padStart(5, "0")}`, 100, { i }));
      many.push(record("n00007", 101, { i: "newer" }));
      await store.putFleetRecords!(many);
      const got = await store.fleetRecords!("agent");
      assert.equal(got.filter((r) => r.id.startsWith("n")).length, 3000);
      assert.deepEqual(JSON.parse(got.find((r) => r.id === "n00007")!.body), { i: "newer" });
    });

    it("keeps text of any kind byte for byte", async () => {
      const body = { text: "quotes ' \" back\\slash \u0000 nul, emoji 🛰️, newline\n" };
      await store.putFleetRecords!([record("odd id ' \"", 60, body, "state")]);
      const [got] = await store.fleetRecords!("state");
      assert.equal(got!.id, "odd id ' \"");
      assert.deepEqual(JSON.parse(got!.body), body);
    });
  });
});
