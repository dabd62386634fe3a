import type { Labels } from "../../../proto/labels.js";

/** One line of a file and the bytes it took: from `start` to `end`, just after its newline. */
export interface Line {
  text: string;
  start: number;
  end: number;
}

/** A finished entry and the file offset just after its last line. */
export interface Joined {
  text: string;
  end: number;
  /** The entry's own time, when its lines carry one (container runtimes' logs); otherwise when it was read. */
  timeUnixNano?: bigint;
  /** Stream labels of this entry besides the file's (the `stream` of a container log line). */
  labels?: Labels;
}

/**
 * What turns a file's lines into entries: the multi-line joiner, or a container log format's decoder. Lines
 * it holds are not delivered yet, so the file's position stays at `pendingStart`.
 */
export interface LineAssembler {
  push(line: Line, now: number): Joined[];
  /** Entries in progress that waited too long. */
  expire(now: number): Joined[];
  /** Every entry in progress: the file will not grow any more. */
  flush(): Joined[];
  readonly pendingStart: number | undefined;
  reset(): void;
}

export interface MultilineOptions {
  /** A line matching it starts a new entry; any other line belongs to the entry before it. */
  startPattern: RegExp;
  /** An entry is finished once it has this many lines (the next line starts another). */
  maxLines: number;
  /** An entry is finished once no line joined it for this long. */
  timeoutMs: number;
}

/**
 * Joins the lines of one multi-line event (a Java stack trace, a Python traceback) into one entry, the way
 * Promtail's `multiline` stage does: lines are joined with "\n". Lines before the first start line form an
 * entry of their own, so nothing is dropped.
 */
export class MultilineJoiner implements LineAssembler {
  private group: { lines: string[]; start: number; end: number; at: number } | undefined;

  constructor(private readonly options: MultilineOptions) {}

  push(line: Line, now: number): Joined[] {
    const out: Joined[] = [];
    if (this.group && this.options.startPattern.test(line.text)) out.push(this.take());
    this.group ??= { lines: [], start: line.start, end: line.end, at: now };
    this.group.lines.push(line.text);
    this.group.end = line.end;
    this.group.at = now;
    if (this.group.lines.length >= this.options.maxLines) out.push(this.take());
    return out;
  }

  /** The entry in progress, if no line joined it for `timeoutMs`. */
  expire(now: number): Joined[] {
    return this.group && now - this.group.at >= this.options.timeoutMs ? [this.take()] : [];
  }

  /** The entry in progress, whatever its age: the file will not grow any more. */
  flush(): Joined[] {
    return this.group ? [this.take()] : [];
  }

  /** Where the entry in progress starts in the file: its lines are not delivered yet. */
  get pendingStart(): number | undefined {
    return this.group?.start;
  }

  reset(): void {
    this.group = undefined;
  }

  private take(): Joined {
    const group = this.group!;
    this.group = undefined;
    return { text: group.lines.join("\n"), end: group.end };
  }
}
