#!/usr/bin/env node
import { parseArgs } from "node:util";
import { renderDdl } from "./ddl.js";

// node dist/deploy/clickhouse/print-ddl.js [--cluster NAME] [--database NAME] > schema.sql
const { values } = parseArgs({ options: { cluster: { type: "string" }, database: { type: "string" } } });
try {
  process.stdout.write(renderDdl({ cluster: values.cluster, database: values.database }));
} catch (err) {
  process.stderr.write(`print-ddl: ${(err as Error).message}\n`);
  process.exit(2);
}
