import { ClickHouseStore } from "../storage/clickhouse.js";
import { storeContract } from "./helpers/store-contract.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";

export const TEST_RETENTION = { logs_days: 30, samples_days: 30, rollups_1m_days: 90, rollups_1h_days: 400 };

storeContract("ClickHouse", async () => {
  const store = new ClickHouseStore({ url: CLICKHOUSE_URL, username: "default", password: "", database: uniqueName("store"), retention: TEST_RETENTION });
  await store.migrate();
  return store;
});
