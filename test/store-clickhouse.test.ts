import { ClickHouseStore } from "../storage/clickhouse.js";
import { storeContract, TEST_RETENTION } from "./helpers/store-contract.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";

storeContract("ClickHouse", async () => {
  const store = new ClickHouseStore({ url: CLICKHOUSE_URL, username: "default", password: "", database: uniqueName("store"), retention: TEST_RETENTION });
  await store.migrate();
  return store;
});
