import { z } from "zod";
import { compileGoRegexp, groupNames } from "../../../common/regex.js";
import { defineStage, failed, sourceText } from "../pipeline/stage.js";
import { goRegexp } from "./schema-parts.js";

// Promtail's `regex` stage: an RE2 expression (Go's syntax) matched against the line or an extracted value;
// each named group that took part in the match is extracted under its name.

export const regexStage = defineStage({
  schema: z
    .strictObject({
      expression: goRegexp((regex) =>
        groupNames(regex).length > 0 ? undefined : "expected at least one named group",
      ).describe("RE2 regular expression (Go's syntax) with named groups (?P<name>...)"),
      source: z.string().min(1).optional().describe("extracted value to match instead of the line"),
    })
    .describe("extract the named groups of a regular expression"),
  compile(config) {
    const regex = compileGoRegexp(config.expression);
    const noSource = failed("missing_source");
    const noMatch = failed("no_match");
    return (entry) => {
      const text = sourceText(entry, config.source);
      if (text === undefined) return noSource;
      const match = regex.exec(text);
      if (match === null) return noMatch;
      for (const name in match.groups) {
        const value = match.groups[name];
        if (value !== undefined) entry.extracted[name] = value;
      }
      return undefined;
    };
  },
});
