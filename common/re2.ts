import RE2 from "re2";

// Regular expressions of Prometheus's configuration (relabel_configs and the like) compiled by Google's RE2, the
// engine behind Go's regexp: the same syntax (Perl classes, (?P<name>...), (?i) and other flags anywhere,
// [[:alpha:]], \pL, \Q...\E), the same linear-time matching, no backreferences or lookaround. Matching runs on
// UTF-8 as in Go; `.` does not match a newline unless the pattern sets (?s).

export type Re2 = InstanceType<typeof RE2>;

export class Re2SyntaxError extends Error {
  override readonly name = "Re2SyntaxError";
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`invalid regular expression ${JSON.stringify(pattern)}: ${reason}`);
  }
}

/**
 * Compiles `pattern` with RE2. `anchored` wraps it as Prometheus does (`^(?:pattern)$`), so it must match the
 * whole input.
 */
export function compileRe2(pattern: string, options: { anchored?: boolean } = {}): Re2 {
  try {
    return new RE2(options.anchored ? `^(?:${pattern})$` : pattern);
  } catch (err) {
    throw new Re2SyntaxError(pattern, (err as Error).message);
  }
}
