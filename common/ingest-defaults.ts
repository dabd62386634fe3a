import type { LogStream } from "../proto/batch.js";
import { type Labels, NO_LABELS } from "../proto/labels.js";
import { DETECTED_LEVEL, entryLevel, type LevelDetection, normalizeLevel, streamLevel } from "./detected-level.js";
import { type LabelLengthLimits, withServiceName } from "./service-name.js";

// Loki 3's ingestion defaults, which Grafana's Logs Drilldown depends on: the `service_name` stream label and the
// `detected_level` structured metadata of each entry. Applied once on every path into the store: by the collector's
// batcher (every collector input, before the disk buffer) and by the query service's push route (which writes to the
// store directly). The aggregator does not apply them: what reaches it has been through one of the two.

export interface IngestDefaultsConfig {
  /** Labels whose value becomes `service_name`, in order; empty: no `service_name` is added. */
  discover_service_name: readonly string[];
  discover_log_levels: boolean;
  log_level_fields: readonly string[];
  log_level_from_json_max_depth: number;
}

export class IngestDefaults {
  private readonly levels: LevelDetection | undefined;
  /** One metadata record per level for entries that had none: records are read-only once made, so they are shared. */
  private readonly levelOnly = new Map<string, Labels>();
  /**
   * Each stream's defaulted form, by the stream object: the receivers' contract screens a stream with its defaults
   * and the batcher (or the central push) writes the same stream with them, and detecting a level costs about as
   * much per entry as the rest of a push; streams are not changed once received.
   */
  private readonly applied = new WeakMap<LogStream, LogStream>();

  constructor(
    private readonly config: IngestDefaultsConfig,
    private readonly limits: LabelLengthLimits,
  ) {
    // Where even the name `detected_level` would be over the label name limit, no level is added.
    this.levels =
      config.discover_log_levels && Buffer.byteLength(DETECTED_LEVEL) <= limits.max_label_name_bytes
        ? { fields: config.log_level_fields, jsonMaxDepth: config.log_level_from_json_max_depth }
        : undefined;
  }

  /** The stream as Loki would store it; the input is not modified. */
  apply(stream: LogStream): LogStream {
    let defaulted = this.applied.get(stream);
    if (defaulted === undefined) this.applied.set(stream, (defaulted = this.defaulted(stream)));
    return defaulted;
  }

  private defaulted(stream: LogStream): LogStream {
    const labels = withServiceName(stream.labels, this.config.discover_service_name, this.limits);
    if (this.levels === undefined) return labels === stream.labels ? stream : { labels, entries: stream.entries };
    const ofStream = streamLevel(stream.labels, this.levels);
    const entries = stream.entries.map((entry) => {
      const existing = entry.metadata[DETECTED_LEVEL];
      const level =
        existing !== undefined
          ? normalizeLevel(existing)
          : (ofStream ?? entryLevel(entry.metadata, entry.line, this.levels!));
      if (level === existing) return entry;
      return { ...entry, metadata: this.withLevel(entry.metadata, level) };
    });
    return { labels, entries };
  }

  private withLevel(metadata: Labels, level: string): Labels {
    if (metadata === NO_LABELS) {
      let shared = this.levelOnly.get(level);
      if (shared === undefined) {
        shared = Object.create(null) as Labels;
        shared[DETECTED_LEVEL] = level;
        // Bounded by the distinct level values seen; unknown values of level labels are kept as they are.
        if (this.levelOnly.size < 1000) this.levelOnly.set(level, shared);
      }
      return shared;
    }
    const out: Labels = Object.create(null);
    for (const name in metadata) out[name] = metadata[name]!;
    out[DETECTED_LEVEL] = level;
    return out;
  }
}
