import { type Batch, SampleKind } from "../../proto/batch.js";
import { labelsOf } from "../../proto/labels.js";

export interface BatchShape {
  streams?: number;
  entriesPerStream?: number;
  /** Each log line is padded or cut to this many bytes. */
  lineBytes?: number;
  series?: number;
  pointsPerSeries?: number;
  nodeId?: string;
  sequence?: number;
  /** The batch's incarnation; "" (the default) is a batch of a collector from before incarnations. */
  incarnation?: string;
  tenant?: string;
  /** Time of the first entry of sequence 0; each sequence starts a second later. */
  startNs?: bigint;
}

/** A deterministic PRNG (mulberry32), so generated batches are the same in every run. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PATHS = ["/api/v1/items", "/api/v1/orders", "/healthz", "/api/v1/users", "/static/app.js"];
const LEVELS = ["info", "info", "info", "warn", "error", "debug"];

/** A batch shaped like an edge node's traffic: logfmt access-log lines and a few gauges and counters. */
export function makeBatch(shape: BatchShape = {}): Batch {
  const { streams = 2, entriesPerStream = 10, lineBytes = 200, series = 2, pointsPerSeries = 10 } = shape;
  const nodeId = shape.nodeId ?? "edge-0001";
  const sequence = shape.sequence ?? 1;
  const random = prng(sequence * 7919 + nodeId.length);
  const start = (shape.startNs ?? 1_764_000_000_000_000_000n) + BigInt(sequence) * 1_000_000_000n;
  // Samples continue where the previous sequence's stopped, as a scraper's would, 15 s apart.
  const firstSample = Number((shape.startNs ?? 1_764_000_000_000_000_000n) / 1_000_000n);
  return {
    tenant: shape.tenant ?? "fleet-a",
    nodeId,
    site: "store-042",
    region: "eu-west",
    sequence,
    incarnation: shape.incarnation ?? "",
    createdUnixNano: start,
    streams: Array.from({ length: streams }, (_, s) => ({
      labels: labelsOf([
        ["node", nodeId],
        ["service", `svc-${s}`],
        ["level", LEVELS[s % LEVELS.length]!],
      ]),
      entries: Array.from({ length: entriesPerStream }, (_, e) => {
        const status = random() < 0.95 ? 200 : 503;
        const base =
          `ts=${start + BigInt(e) * 1000n} level=${LEVELS[e % LEVELS.length]} msg="request served" ` +
          `path=${PATHS[e % PATHS.length]}/${Math.floor(random() * 100000)} status=${status} ` +
          `duration_ms=${(random() * 250).toFixed(2)} user=u${Math.floor(random() * 5000)} ` +
          `trace_id=${Math.floor(random() * 2 ** 52).toString(16)}${Math.floor(random() * 2 ** 52).toString(16)} `;
        const line = base.length >= lineBytes ? base.slice(0, lineBytes) : base + "k".repeat(lineBytes - base.length);
        return {
          timeUnixNano: start + BigInt(s * entriesPerStream + e),
          line,
          metadata: e % 10 === 0 ? labelsOf([["trace_id", `t${e}`]]) : labelsOf([]),
        };
      }),
    })),
    series: Array.from({ length: series }, (_, m) => ({
      name: m % 2 === 0 ? "node_cpu_seconds_total" : "node_memory_available_bytes",
      labels: labelsOf([
        ["node", nodeId],
        ["cpu", String(m)],
      ]),
      kind: m % 2 === 0 ? SampleKind.Counter : SampleKind.Gauge,
      points: Array.from({ length: pointsPerSeries }, (_, p) => {
        const tick = sequence * pointsPerSeries + p;
        return { timeUnixMs: firstSample + tick * 15_000, value: m % 2 === 0 ? tick * 1.5 : 1e9 + random() * 1e6 };
      }),
      // As a collector does from the second batch on: the sample sent just before these.
      ...(sequence > 1 && m % 2 === 0
        ? {
            previous: {
              timeUnixMs: firstSample + (sequence * pointsPerSeries - 1) * 15_000,
              value: (sequence * pointsPerSeries - 1) * 1.5,
            },
          }
        : {}),
    })),
  };
}
