import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { DuckDBStore } from "../storage/duckdb.js";
import { injectionSuite } from "./helpers/injection.js";
import { rollupEquivalence } from "./helpers/rollup-equivalence.js";
import { storeContract, TEST_RETENTION } from "./helpers/store-contract.js";

// The same suites as the ClickHouse store, each on a fresh database file in a directory that does not exist
// yet (the store creates it).
const dir = mkdtempSync(join(tmpdir(), "bifrost-duckdb-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let opened = 0;

async function open(): Promise<DuckDBStore> {
  const store = new DuckDBStore({ path: join(dir, `data-${opened++}`, "bifrost.duckdb"), retention: TEST_RETENTION });
  await store.migrate();
  return store;
}

storeContract("DuckDB", open);
injectionSuite("DuckDB", open);
rollupEquivalence("DuckDB", open);
