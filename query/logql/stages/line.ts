import type { LineFilterStage } from "../ast.js";
import { compileRe2 } from "../regex.js";
import type { StageFn } from "./parsers.js";

/** `|= "a" or "b"` keeps a line containing any value; `!=` keeps a line containing none. `|= ""` keeps all. */
export function lineFilterStage(stage: LineFilterStage): StageFn {
  const negate = stage.op === "!=" || stage.op === "!~";
  let contains: (line: string) => boolean;
  if (stage.op === "|=" || stage.op === "!=") {
    const values = stage.values;
    contains = values.length === 1 ? (line) => line.includes(values[0]!) : (line) => values.some((value) => line.includes(value));
  } else {
    const regexes = stage.values.map((value) => compileRe2(value));
    contains = regexes.length === 1 ? (line) => regexes[0]!.test(line) : (line) => regexes.some((regex) => regex.test(line));
  }
  return negate ? (_ts, line) => (contains(line) ? null : line) : (_ts, line) => (contains(line) ? line : null);
}

// ANSI escape sequences as Loki's decolorize removes them (the stripansi pattern).
const ANSI = /[\u001B\u009B][[\]()#;?]*(?:(?:(?:[a-zA-Z\d]*(?:;[a-zA-Z\d]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PRZcf-ntqry=><~]))/g;

export function decolorizeStage(): StageFn {
  return (_ts, line) => (line.includes("\u001B") || line.includes("\u009B") ? line.replace(ANSI, "") : line);
}
