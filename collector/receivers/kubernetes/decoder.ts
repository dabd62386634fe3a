import { type ContainerLine, type ContainerStream, parseCri, PartialJoiner } from "../../processing/cri.js";
import { parseDocker } from "../../processing/docker.js";
import { labelsOf, type Labels } from "../../../proto/labels.js";
import type { Joined, Line, LineAssembler } from "../files/multiline.js";

// A container log file's lines as entries: each line read in its runtime's format (CRI or Docker json-file),
// the pieces of a split line joined, the entry stamped with the runtime's time and labelled with its stream.
// A line in neither format is kept as it is, at the time it was read, and counted.

const STREAM_LABELS: Record<ContainerStream, Labels> = {
  stdout: labelsOf([["stream", "stdout"]]),
  stderr: labelsOf([["stream", "stderr"]]),
};

export interface DecoderOptions {
  format: "auto" | "cri" | "docker";
  maxLineBytes: number;
  maxPartialLines: number;
  partialTimeoutMs: number;
  onUnparsed?: () => void;
  onTruncated?: () => void;
}

export class ContainerLogDecoder implements LineAssembler {
  private readonly joiner: PartialJoiner;
  /** Per stream with pieces waiting: the file offset of the first piece, and when it was read. */
  private readonly open = new Map<ContainerStream, { start: number; at: number }>();
  private lastEnd = 0;

  constructor(private readonly options: DecoderOptions) {
    this.joiner = new PartialJoiner({ maxLineBytes: options.maxLineBytes, maxPartialLines: options.maxPartialLines });
  }

  private parse(text: string): ContainerLine | undefined {
    const { format } = this.options;
    if (format === "cri") return parseCri(text);
    if (format === "docker") return parseDocker(text);
    return text.startsWith("{") ? parseDocker(text) : parseCri(text);
  }

  push(line: Line, now: number): Joined[] {
    this.lastEnd = line.end;
    const parsed = this.parse(line.text);
    if (!parsed) {
      this.options.onUnparsed?.();
      return [{ text: line.text, end: line.end }];
    }
    if (parsed.partial && !this.open.has(parsed.stream)) this.open.set(parsed.stream, { start: line.start, at: now });
    const joined = this.joiner.push(parsed);
    if (!joined) return [];
    this.open.delete(parsed.stream);
    if (joined.truncated) this.options.onTruncated?.();
    return [
      { text: joined.content, end: line.end, timeUnixNano: joined.timeUnixNano, labels: STREAM_LABELS[joined.stream] },
    ];
  }

  expire(now: number): Joined[] {
    for (const { at } of this.open.values()) if (now - at >= this.options.partialTimeoutMs) return this.flush();
    return [];
  }

  flush(): Joined[] {
    this.open.clear();
    return this.joiner.flush().map((joined) => {
      if (joined.truncated) this.options.onTruncated?.();
      return {
        text: joined.content,
        end: this.lastEnd,
        timeUnixNano: joined.timeUnixNano,
        labels: STREAM_LABELS[joined.stream],
      };
    });
  }

  get pendingStart(): number | undefined {
    let start: number | undefined;
    for (const open of this.open.values()) start = start === undefined ? open.start : Math.min(start, open.start);
    return start;
  }

  reset(): void {
    this.joiner.reset();
    this.open.clear();
  }
}
