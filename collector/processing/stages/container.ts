import { z } from "zod";
import { type ContainerLine, parseCri } from "../cri.js";
import { parseDocker } from "../docker.js";
import { defineStage, failed, type StageRun } from "../pipeline/stage.js";

// Promtail's `cri` and `docker` stages: a container runtime's log line (collector/processing/cri.ts and
// docker.ts, the parsers the Kubernetes input uses) becomes its content, stamped with the runtime's time and
// labelled with its `stream` (stdout, stderr). A line in neither format goes on unchanged. The Kubernetes
// input joins partial lines itself; here each piece is an entry, its `flags` (`P`) extracted.

function containerStage(parse: (line: string) => ContainerLine | undefined): StageRun {
  const notContainer = failed("not_container_format");
  return (entry) => {
    const parsed = parse(entry.line);
    if (parsed === undefined) return notContainer;
    entry.timeUnixNano = parsed.timeUnixNano;
    entry.labels["stream"] = parsed.stream;
    entry.extracted["stream"] = parsed.stream;
    entry.extracted["flags"] = parsed.partial ? "P" : "F";
    entry.extracted["content"] = parsed.content;
    entry.line = parsed.content;
    return undefined;
  };
}

export const criStage = defineStage({
  schema: z
    .preprocess((v) => v ?? {}, z.strictObject({}))
    .describe("read the CRI log format of containerd and CRI-O: time, stream, content"),
  compile: () => containerStage(parseCri),
});

export const dockerStage = defineStage({
  schema: z
    .preprocess((v) => v ?? {}, z.strictObject({}))
    .describe("read Docker's json-file log format: time, stream, content"),
  compile: () => containerStage(parseDocker),
});
