import { Drain, SAMPLE_INTERVAL_MS, type Cluster } from "./drain.js";
import { lineFormat, tokenizerFor } from "./tokenizers.js";

// /loki/api/v1/patterns: the log patterns of the selected streams with their line counts per step, in the shape
// of Loki's pattern querier (pkg/pattern: one miner per stream and level, the same pattern and level of several
// streams merged, patterns under 30 lines left out, the 300 most frequent, largest first).
//
// Bifrost mines the patterns when they are asked for, from the lines of the range, where Loki's pattern ingesters
// mine every pushed line as it arrives and keep the result in memory for a few hours. Mining at query time needs no
// state beside the logs: it answers for any range the logs are kept (days, not hours), after restarts and
// rebalances, with the same answer from every query replica, costs nothing for streams nobody looks at, and keeps
// the aggregators stateless; its cost is reading the range's lines, which query.limits.max_pattern_lines bounds.

export interface PatternSeries {
  pattern: string;
  level: string;
  /** [Unix seconds, lines] per step with lines, zero steps in between. */
  samples: [number, number][];
}

/** Pattern ingesters' levels; any other value of detected_level counts as unknown. */
const LEVELS = new Set(["unknown", "debug", "info", "warn", "error", "fatal", "critical", "trace"]);
const MIN_LINES = 30;
const MAX_PATTERNS = 300;
/** Loki's chunks of pattern samples span an hour; samples are filled with zeros within one only. */
const CHUNK_MS = 3_600_000;

export class PatternMiner {
  /** Per stream: the miners by level, all with the tokenizer of the stream's first line's format. */
  private readonly streams = new Map<string, { format: ReturnType<typeof lineFormat>; byLevel: Map<string, Drain> }>();

  /** Adds one line of a stream; lines of a stream must come oldest first. */
  add(stream: string, line: string, tsMs: number, detectedLevel: string | undefined): void {
    let miners = this.streams.get(stream);
    if (miners === undefined) {
      miners = { format: lineFormat(line), byLevel: new Map() };
      this.streams.set(stream, miners);
    }
    const lower = detectedLevel?.toLowerCase();
    const level = lower !== undefined && LEVELS.has(lower) ? lower : "unknown";
    let drain = miners.byLevel.get(level);
    if (drain === undefined) {
      drain = new Drain(tokenizerFor(miners.format));
      miners.byLevel.set(level, drain);
    }
    drain.train(line, tsMs);
  }

  /** The patterns with their samples in [startMs, endMs) at `stepMs`. */
  result(startMs: number, endMs: number, stepMs: number): PatternSeries[] {
    const merged = new Map<string, { pattern: string; level: string; samples: Map<number, number> }>();
    for (const { byLevel } of this.streams.values()) {
      for (const [level, drain] of byLevel) {
        for (const { pattern, cluster } of drain.patterns()) {
          const key = `${level}\u0000${pattern}`;
          let series = merged.get(key);
          if (series === undefined) merged.set(key, (series = { pattern, level, samples: new Map() }));
          for (const [ts, lines] of stepSamples(cluster, startMs, endMs, stepMs))
            series.samples.set(ts, (series.samples.get(ts) ?? 0) + lines);
        }
      }
    }
    return [...merged.values()]
      .map((series) => ({
        pattern: series.pattern,
        level: series.level,
        samples: [...series.samples].sort(([a], [b]) => a - b),
        total: [...series.samples.values()].reduce((sum, lines) => sum + lines, 0),
      }))
      .filter((series) => series.total >= MIN_LINES)
      .sort(
        (a, b) =>
          b.total - a.total ||
          (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : a.level < b.level ? -1 : a.level > b.level ? 1 : 0),
      )
      .slice(0, MAX_PATTERNS)
      .map(({ pattern, level, samples }) => ({
        pattern,
        level,
        samples: samples.map(([ms, lines]) => [Math.floor(ms / 1000), lines] as [number, number]),
      }));
  }
}

/**
 * A template's 10-second counts within [startMs, endMs), summed per step (steps at multiples of `stepMs`) with the
 * empty steps between two counted ones as zeros, within each hour-long run of counts, as Loki's chunks give them.
 */
function stepSamples(cluster: Cluster, startMs: number, endMs: number, stepMs: number): [number, number][] {
  const counted = [...cluster.samples].filter(([ts]) => ts >= startMs && ts < endMs).sort(([a], [b]) => a - b);
  if (stepMs === SAMPLE_INTERVAL_MS) return counted;
  const out: [number, number][] = [];
  let chunkStart = -Infinity;
  let current = -Infinity;
  for (const [ts, lines] of counted) {
    const step = ts - (ts % stepMs);
    if (ts - chunkStart >= CHUNK_MS) {
      chunkStart = ts;
      current = step;
      out.push([step, lines]);
      continue;
    }
    for (let fill = current + stepMs; fill <= step; fill += stepMs) out.push([fill, 0]);
    if (step > current) current = step;
    out[out.length - 1]![1] += lines;
  }
  return out;
}
