import { Counter, type Registry } from "prom-client";
import { z } from "zod";
import { defineStage, textOf, type PipelineEntry } from "../pipeline/stage.js";
import {
  customDetector,
  DEFAULT_DETECTORS,
  type Detector,
  DETECTOR_NAMES,
  BUILT_IN_DETECTORS,
  redactWith,
} from "./redact-detectors.js";
import { goRegexp, labelName } from "./schema-parts.js";

// Bifrost's `redact` stage (Promtail has none; Alloy's loki.secretfilter and Vector's redact are the peers):
// secrets found by the built-in detectors and the configured expressions are replaced by a marker in the line,
// in the extracted values named by `source` and in structured metadata, before the entry leaves the node. It is
// best-effort: a secret no detector's pattern describes (a password in free text, a key split over lines) goes
// through. Each replacement is counted by detector in bifrost_collector_pipeline_redactions_total.

const redactionsByRegistry = new WeakMap<Registry, Counter<"pipeline" | "detector">>();

export function redactionCounter(registry: Registry): Counter<"pipeline" | "detector"> {
  let counter = redactionsByRegistry.get(registry);
  if (counter === undefined) {
    counter = new Counter({
      name: "bifrost_collector_pipeline_redactions_total",
      help: "Secrets replaced by the redact stage (pipeline: the input's), by detector.",
      labelNames: ["pipeline", "detector"],
      registers: [registry],
    });
    redactionsByRegistry.set(registry, counter);
  }
  return counter;
}

export const redactStage = defineStage({
  schema: z
    .strictObject({
      detectors: z
        .array(z.enum(DETECTOR_NAMES))
        .default(DEFAULT_DETECTORS)
        .describe(
          `built-in detectors to run; the default is every one but email, ipv4 and ipv6 (${DEFAULT_DETECTORS.join(", ")})`,
        ),
      expressions: z
        .array(
          z.strictObject({
            name: labelName().describe("the detector's name in the marker and the count"),
            expression: goRegexp().describe(
              "RE2 regular expression; its group `secret`, else the whole match, is replaced",
            ),
          }),
        )
        .default([])
        .describe("detectors of your own"),
      marker: z
        .string()
        .default("<redacted:{detector}>")
        .describe("what replaces a secret; `{detector}` is replaced by the detector's name"),
      line: z.boolean().default(true).describe("redact the line"),
      source: z.array(z.string().min(1)).default([]).describe("extracted values to redact too"),
      structured_metadata: z.boolean().default(true).describe("redact structured metadata values too"),
    })
    .refine((c) => c.detectors.length + c.expressions.length > 0, "expected at least one detector or expression")
    .describe("replace secrets (built-in detectors and your own expressions) with a marker; best-effort"),
  compile(config, context) {
    const detectors: Detector[] = [
      // In the built-in order whatever the configured one: an address's IPv6 form is tried before its IPv4 part.
      ...DETECTOR_NAMES.filter((name) => config.detectors.includes(name)).map((name) => BUILT_IN_DETECTORS[name]),
      ...config.expressions.map((custom) => customDetector(custom.name, custom.expression)),
    ];
    const markers = detectors.map((d) => config.marker.split("{detector}").join(d.name));
    const counts = new Array<number>(detectors.length).fill(0);
    const counter = context.registry && redactionCounter(context.registry);
    const pipeline = context.pipeline ?? "";
    const redact = (text: string): string => {
      for (let i = 0; i < detectors.length; i++) {
        const detector = detectors[i]!;
        if (!detector.precheck(text)) continue;
        const result = redactWith(detector, text, markers[i]!);
        if (result.count > 0) {
          counts[i]! += result.count;
          text = result.text;
        }
      }
      return text;
    };
    const flush = () => {
      for (let i = 0; i < detectors.length; i++)
        if (counts[i]! > 0) {
          counter?.inc({ pipeline, detector: detectors[i]!.name }, counts[i]);
          counts[i] = 0;
        }
    };
    const run = (entry: PipelineEntry) => {
      if (config.line) entry.line = redact(entry.line);
      for (const key of config.source) {
        const value = textOf(entry.extracted[key]);
        if (value !== undefined) {
          const redacted = redact(value);
          if (redacted !== value) entry.extracted[key] = redacted;
        }
      }
      if (config.structured_metadata)
        for (const name in entry.metadata) entry.metadata[name] = redact(entry.metadata[name]!);
      if (counter !== undefined) flush();
      return undefined;
    };
    return run;
  },
});
