import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs on stdout, one object a line, with the component that wrote them. */
export function createLogger(level: string, bindings: Record<string, string> = {}): Logger {
  return pino({
    level,
    base: { service: "bifrost", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
