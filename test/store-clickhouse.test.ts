import { ClickHouseStore } from "../storage/clickhouse.js";
import { injectionSuite } from "./helpers/injection.js";
import { rollupEquivalence } from "./helpers/rollup-equivalence.js";
import { CLICKHOUSE_URL, uniqueName } from "./helpers/services.js";
import { storeContract, TEST_RETENTION } from "./helpers/store-contract.js";

async function open(): Promise<ClickHouseStore> {
  const store = new ClickHouseStore({
    url: CLICKHOUSE_URL,
    username: "default",
    password: "",
    database: uniqueName("store"),
    retention: TEST_RETENTION,
  });
  await store.migrate();
  return store;
}

storeContract("ClickHouse", open);
injectionSuite("ClickHouse", open);
rollupEquivalence("ClickHouse", open);
