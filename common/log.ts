import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout, one object a line, with the component that wrote them; also into `tap` when given. */
export function createLogger(level: string, bindings: Record<string, string> = {}, tap?: LogTap): Logger {
  const options = {
    level,
    base: { service: "bifrost", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (tap === undefined) return pino(options);
  return pino(
    options,
    pino.multistream([
      { level: level as pino.Level, stream: pino.destination(1) },
      { level: level as pino.Level, stream: tap },
    ]),
  );
}

/**
 * The process's log lines for a consumer in the same process (`bifrost all` stores its own logs). Lines
 * written before a consumer attaches are kept, up to `keep`, so that the start-up is not missing.
 */
export class LogTap extends Writable {
  private consumer: ((line: string) => void) | undefined;
  private readonly early: string[] = [];

  constructor(private readonly keep = 1000) {
    super();
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    for (const line of chunk.toString().split("\n")) {
      if (line === "") continue;
      if (this.consumer) this.consumer(line);
      else if (this.early.length < this.keep) this.early.push(line);
    }
    callback();
  }

  attach(consumer: (line: string) => void): void {
    this.consumer = consumer;
    for (const line of this.early.splice(0)) consumer(line);
  }
}
