import type { Labels } from "../proto/labels.js";

// Loki 3's `service_name` stream label (pkg/loghttp/push, discover_service_name): a stream without one gets the
// value of the first of the discovery labels it has, else `unknown_service`. Grafana's Logs Drilldown lists and
// selects services by it, so every ingestion path adds it once, before the stream is stored.

export const SERVICE_NAME = "service_name";
export const UNKNOWN_SERVICE = "unknown_service";

/** Loki's default `discover_service_name`, in its order of preference. */
export const DEFAULT_SERVICE_NAME_SOURCES: readonly string[] = [
  "service",
  "app",
  "application",
  "app_name",
  "name",
  "app_kubernetes_io_name",
  "container",
  "container_name",
  "k8s_container_name",
  "component",
  "workload",
  "job",
  "k8s_job_name",
];

/** The label lengths a stream must keep (collector.limits and aggregator.limits, whichever is smaller). */
export interface LabelLengthLimits {
  max_label_name_bytes: number;
  max_label_value_bytes: number;
}

/**
 * `labels` with `service_name` added, or `labels` itself when it has one already or `sources` is empty (discovery
 * off). Adding it never turns an accepted stream into a refused one: the label count leaves `service_name` out
 * (proto/validate.ts, as Loki's validator does), a discovered value is one the stream carries already, and where
 * the name or `unknown_service` would be longer than `limits` allow the stream is left as it is.
 */
export function withServiceName(labels: Labels, sources: readonly string[], limits: LabelLengthLimits): Labels {
  if (sources.length === 0 || (labels[SERVICE_NAME] ?? "") !== "") return labels;
  let value = UNKNOWN_SERVICE;
  for (const source of sources) {
    const candidate = labels[source];
    if (candidate !== undefined && candidate !== "") {
      value = candidate;
      break;
    }
  }
  if (
    Buffer.byteLength(SERVICE_NAME) > limits.max_label_name_bytes ||
    Buffer.byteLength(value) > limits.max_label_value_bytes
  )
    return labels;
  const out: Labels = Object.create(null);
  for (const name in labels) out[name] = labels[name]!;
  out[SERVICE_NAME] = value;
  return out;
}
