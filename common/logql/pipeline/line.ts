import type { LineFilterStage } from "../syntax/ast.js";
import { compileRe2Test } from "../../regex.js";
import { compileIpMatcher } from "./ip.js";
import { StageError, type StageFn } from "./parsers.js";
import { compileLineFilterPattern } from "./pattern.js";

type LineTest = (line: string) => boolean;

/** The test of one value of a line filter; throws StageError, RegexSyntaxError or PatternSyntaxError for a bad one. */
export function compileLineTest(op: LineFilterStage["op"], value: string, ip: boolean): LineTest {
  if (ip) {
    if (op !== "|=" && op !== "!=") throw new StageError("ip: invalid operation");
    const matcher = compileIpMatcher(value);
    if (matcher === undefined) throw new StageError(`ip: invalid pattern: ${JSON.stringify(value)}`);
    return matcher;
  }
  switch (op) {
    case "|=":
    case "!=":
      return (line) => line.includes(value);
    case "|~":
    case "!~":
      return compileRe2Test(value);
    case "|>":
    case "!>":
      return compileLineFilterPattern(value);
  }
}

/**
 * `|= "a" or "b"` keeps a line containing any value; `!=` keeps a line containing none. `|= ""` keeps all. Patterns
 * and ip() values work the same way.
 */
export function lineFilterTest(stage: LineFilterStage): LineTest {
  const negate = stage.op === "!=" || stage.op === "!~" || stage.op === "!>";
  const tests = stage.values.map((value, index) => compileLineTest(stage.op, value, stage.ip?.[index] === true));
  const first = tests[0]!;
  const contains: LineTest = tests.length === 1 ? first : (line) => tests.some((test) => test(line));
  return negate ? (line) => !contains(line) : contains;
}

export function lineFilterStage(stage: LineFilterStage): StageFn {
  const keeps = lineFilterTest(stage);
  return (_ts, line) => (keeps(line) ? line : null);
}

// ANSI escape sequences as Loki's decolorize removes them (the stripansi pattern).
const ANSI =
  /[\u001B\u009B][[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[a-zA-Z\d]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PRZcf-ntqry=><~]))/g;

export function decolorizeStage(): StageFn {
  return (_ts, line) => (line.includes("\u001B") || line.includes("\u009B") ? line.replace(ANSI, "") : line);
}
