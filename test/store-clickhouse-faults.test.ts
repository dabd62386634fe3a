import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { labelsOf } from "../proto/labels.js";
import { ClickHouseStore } from "../storage/clickhouse.js";
import { StoreError } from "../storage/values.js";
import { CLICKHOUSE_URL, freePort, startChdbHttp, uniqueName } from "./helpers/services.js";
import { T0_NS, TEST_RETENTION } from "./helpers/store-contract.js";

describe("ClickHouse store under faults", () => {
  it("retries with backoff until a ClickHouse that was down comes up, then writes", async () => {
    const port = await freePort();
    const store = new ClickHouseStore({
      url: `http://127.0.0.1:${port}`,
      username: "default",
      password: "",
      database: uniqueName("late"),
      retention: TEST_RETENTION,
      attempts: 10,
    });
    const migrated = store.migrate();
    await new Promise((r) => setTimeout(r, 1500));
    const server = await startChdbHttp([], port);
    try {
      await migrated;
      const batch = {
        id: "late:1",
        tenant: "t",
        streams: [
          {
            labels: labelsOf([["job", "late"]]),
            entries: [{ timeUnixNano: T0_NS, line: "arrived", metadata: labelsOf([]) }],
          },
        ],
      };
      assert.deepEqual(await store.appendLogs([batch]), { written: 1, duplicates: 0, rows: 1 });
    } finally {
      await store.close();
      await server.stop();
    }
  });

  it("gives up after its attempts with an error that says the failure was transient", async () => {
    const store = new ClickHouseStore({
      url: `http://127.0.0.1:${await freePort()}`,
      username: "default",
      password: "",
      database: "unreachable",
      retention: TEST_RETENTION,
      attempts: 2,
    });
    await assert.rejects(
      store.migrate(),
      (err: unknown) => err instanceof StoreError && err.transient && /after 2 attempts/.test(err.message),
    );
    await store.close();
  });

  it("fails at once, without retrying, on an error in the request", async () => {
    const store = new ClickHouseStore({
      url: CLICKHOUSE_URL,
      username: "default",
      password: "",
      database: uniqueName("permanent"),
      retention: TEST_RETENTION,
      attempts: 5,
    });
    await store.migrate();
    await store.appendLogs([
      {
        id: "p:1",
        tenant: "t",
        streams: [
          { labels: labelsOf([["job", "x"]]), entries: [{ timeUnixNano: T0_NS, line: "l", metadata: labelsOf([]) }] },
        ],
      },
    ]);
    await assert.rejects(
      store.selectLogs({
        tenant: "t",
        matchers: [{ name: "job", op: "=", value: "x" }],
        lineFilters: [{ op: "|~", values: ["(unclosed"] }],
        startNs: 0n,
        endNs: T0_NS * 2n,
        limit: 10,
        direction: "forward",
      }),
      (err: unknown) => err instanceof StoreError && !err.transient && !/attempts/.test(err.message),
    );
    await store.close();
  });
});
