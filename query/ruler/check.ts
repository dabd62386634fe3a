import { readFileSync } from "node:fs";
import type { Config } from "../../config.js";
import { parseRuleFile, RuleFileError } from "./rules.js";
import { ruleSources } from "./ruler.js";

// `bifrost query --check-config` (and `all`) loads the rule files as the ruler will, so that a missing file or a
// bad expression fails the check, as `promtool check rules` does, rather than only a log line at run time.

/** Every problem of the configured rule files, each `file:line:column: group "g", rule n: reason`. */
export function checkRuleFiles(config: Config): string[] {
  const { ruler, default_tenant } = config.query;
  const problems: string[] = [];
  const sources = ruleSources(
    {
      ruleFiles: ruler.rule_files,
      ...(ruler.rules_dir !== undefined ? { rulesDir: ruler.rules_dir } : {}),
      tenants: ruler.tenants.length > 0 ? ruler.tenants : [default_tenant],
    },
    problems,
  );
  for (const source of sources) {
    let text: string;
    try {
      text = readFileSync(source.path, "utf8");
    } catch (err) {
      problems.push(`${source.path}: ${(err as Error).message}`);
      continue;
    }
    try {
      parseRuleFile(source.path, text, ruler.evaluation_interval_ms, source.language);
    } catch (err) {
      if (!(err instanceof RuleFileError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}
