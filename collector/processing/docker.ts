import { rfc3339Nanos } from "../../common/rfc3339.js";
import type { ContainerLine } from "./cri.js";

// Docker's json-file log driver: one JSON object per line, {"log": "...\n", "stream": "stdout", "time": "<RFC
// 3339>"}. Docker splits lines longer than 16 KiB into pieces; every piece but the last lacks the trailing
// newline, so a `log` without one is a partial line (Promtail's `docker` stage reads it so). The pieces are
// joined by the same PartialJoiner as CRI's.

/** A json-file line, or undefined when the line is not one. */
export function parseDocker(line: string): ContainerLine | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  const { log, stream, time } = (doc ?? {}) as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof log !== "string" || (stream !== "stdout" && stream !== "stderr") || typeof time !== "string")
    return undefined;
  const timeUnixNano = rfc3339Nanos(time);
  if (timeUnixNano === undefined) return undefined;
  const partial = !log.endsWith("\n");
  return { timeUnixNano, stream, partial, content: partial ? log : log.slice(0, log.endsWith("\r\n") ? -2 : -1) };
}
