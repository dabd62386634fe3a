#!/usr/bin/env node
import { renderConfigReference } from "./config-reference.js";

// npm run -s docs:config > docs/configuration.md
try {
  process.stdout.write(renderConfigReference());
} catch (err) {
  process.stderr.write(`docs:config: ${(err as Error).message}\n`);
  process.exit(2);
}
