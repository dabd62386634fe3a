import { rfc3339Nanos } from "../../common/rfc3339.js";

// The CRI log format that containerd and CRI-O write under /var/log/pods (the kubelet's container log format):
//   <RFC 3339 time> <stdout|stderr> <tags> <content>
// with tags `F` (a full line) or `P` (a partial one: the runtime split a long line, and the pieces up to the
// next `F` of the same stream are one line). Promtail's and Alloy's `cri` stage read it so; this module is
// that stage for the Kubernetes input and for the processing pipeline.

export type ContainerStream = "stdout" | "stderr";

/** One line of a container runtime's log file. */
export interface ContainerLine {
  timeUnixNano: bigint;
  stream: ContainerStream;
  /** A piece of a longer line: the pieces up to the next full one of the same stream join into one entry. */
  partial: boolean;
  content: string;
}

/** A CRI line, or undefined when the line is not one. */
export function parseCri(line: string): ContainerLine | undefined {
  const timeEnd = line.indexOf(" ");
  if (timeEnd < 0) return undefined;
  const streamEnd = line.indexOf(" ", timeEnd + 1);
  if (streamEnd < 0) return undefined;
  const stream = line.slice(timeEnd + 1, streamEnd);
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  // The tags field is followed by a space and the content, which may be empty (and the space absent with it).
  let tagsEnd = line.indexOf(" ", streamEnd + 1);
  if (tagsEnd < 0) tagsEnd = line.length;
  const tags = line.slice(streamEnd + 1, tagsEnd).split(":");
  if (tags[0] !== "F" && tags[0] !== "P") return undefined;
  const timeUnixNano = rfc3339Nanos(line.slice(0, timeEnd));
  if (timeUnixNano === undefined) return undefined;
  return { timeUnixNano, stream, partial: tags[0] === "P", content: line.slice(tagsEnd + 1) };
}

export interface PartialLimits {
  /** A line joined from pieces is cut at this many bytes (the pieces after it are dropped and counted). */
  maxLineBytes: number;
  /** After this many pieces the line so far is an entry of its own, as Promtail's max_partial_lines. */
  maxPartialLines: number;
}

/** A whole line joined from a stream's pieces, and when its first piece was written. */
export interface JoinedLine {
  timeUnixNano: bigint;
  stream: ContainerStream;
  content: string;
  /** Pieces past `maxLineBytes` were dropped. */
  truncated: boolean;
}

interface Open {
  first: bigint;
  pieces: string[];
  bytes: number;
  truncated: boolean;
}

/**
 * Joins partial lines per stream (stdout and stderr interleave, each with its own pieces), as Promtail's `cri`
 * stage does; a line takes the time of its first piece.
 */
export class PartialJoiner {
  private readonly open = new Map<ContainerStream, Open>();

  constructor(private readonly limits: PartialLimits) {}

  /** The whole line this piece ends, if any. */
  push(line: ContainerLine): JoinedLine | undefined {
    let open = this.open.get(line.stream);
    if (!open && !line.partial)
      return this.whole(
        { first: line.timeUnixNano, pieces: [line.content], bytes: Buffer.byteLength(line.content), truncated: false },
        line.stream,
      );
    if (!open) {
      open = { first: line.timeUnixNano, pieces: [], bytes: 0, truncated: false };
      this.open.set(line.stream, open);
    }
    const bytes = Buffer.byteLength(line.content);
    if (open.bytes + bytes <= this.limits.maxLineBytes) {
      open.pieces.push(line.content);
      open.bytes += bytes;
    } else {
      if (open.bytes < this.limits.maxLineBytes) open.pieces.push(line.content);
      open.bytes = Math.max(open.bytes, this.limits.maxLineBytes);
      open.truncated = true;
    }
    if (line.partial && open.pieces.length < this.limits.maxPartialLines) return undefined;
    this.open.delete(line.stream);
    return this.whole(open, line.stream);
  }

  private whole(open: Open, stream: ContainerStream): JoinedLine {
    let content = open.pieces.length === 1 ? open.pieces[0]! : open.pieces.join("");
    let truncated = open.truncated;
    if (Buffer.byteLength(content) > this.limits.maxLineBytes) {
      content = Buffer.from(content)
        .subarray(0, this.limits.maxLineBytes)
        .toString("utf8")
        .replace(/\uFFFD$/, "");
      truncated = true;
    }
    return { timeUnixNano: open.first, stream, content, truncated };
  }

  /** Every stream's line in progress, as it is (the file ends, or it waited too long). */
  flush(): JoinedLine[] {
    const lines = [...this.open].map(([stream, open]) => this.whole(open, stream));
    this.open.clear();
    return lines;
  }

  get pending(): boolean {
    return this.open.size > 0;
  }

  reset(): void {
    this.open.clear();
  }
}
