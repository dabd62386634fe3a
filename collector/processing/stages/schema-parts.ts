import { z } from "zod";
import { compileGoRegexp, type Re2, RegexSyntaxError } from "../../../common/regex.js";
import { LABEL_NAME } from "../../../proto/validate.js";

/** A regular expression in Go's RE2 syntax, checked when the configuration loads, with `check`'s problem if any. */
export function goRegexp(check?: (regex: Re2) => string | undefined) {
  return z.string().superRefine((pattern, ctx) => {
    let problem: string | undefined;
    try {
      problem = check?.(compileGoRegexp(pattern));
    } catch (err) {
      if (!(err instanceof RegexSyntaxError)) throw err;
      problem = err.message;
    }
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
}

export const labelName = () => z.string().regex(LABEL_NAME, "expected a Prometheus label name");

/** A map of label name to the extracted key it comes from (empty: the same name), as `labels` and `structured_metadata` take it. */
export function labelSources() {
  return z
    .record(labelName(), z.string().nullable())
    .refine((map) => Object.keys(map).length > 0, "expected at least one label");
}
