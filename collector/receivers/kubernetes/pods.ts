import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Counter, Gauge, type Registry } from "prom-client";
import { sanitizeLabelKey } from "../../../common/label-names.js";
import type { Logger } from "../../../common/log.js";
import { labelsOf, type Labels } from "../../../proto/labels.js";
import type { Batcher } from "../../buffer/batcher.js";
import { FileTail, type FileTailOptions } from "../files/receiver.js";
import { PodMetadata, type PodInfo } from "./api.js";
import type { KubernetesConfig } from "./config.js";
import { ContainerLogDecoder } from "./decoder.js";

// Kubernetes pod logs as the kubelet lays them out on a node: <root>/<namespace>_<pod>_<uid>/<container>/<n>.log
// (n counts the container's restarts; the kubelet rotates n.log to n.log.<time> and compresses older ones).
// They are tailed with the file tail's machinery (positions, rename and copy-truncate rotation, a full disk
// buffer pausing the reads) under a positions file of their own; each file's lines are decoded as CRI or
// Docker json-file, and labelled {namespace, pod, container, stream} from the path, plus the pod's chosen
// labels and annotations when the API server tells them.

export interface PodLogsOptions {
  config: KubernetesConfig;
  positionsFile: string;
  tenant: string;
  batcher: Pick<Batcher, "add" | "flush">;
  /** Lines outside it are skipped and counted (FileTail's contract). */
  contract?: FileTailOptions["contract"];
  maxLineBytes: number;
  maxReadBytes: number;
  pollMs: number;
  syncMs: number;
  rotateWaitMs: number;
  registry: Registry;
  log?: Logger | undefined;
  /** In-cluster API server settings from the environment (KUBERNETES_SERVICE_HOST/PORT); tests pass their own. */
  env?: NodeJS.ProcessEnv;
}

/** namespace, pod, uid and container of a pod log file, or undefined for a path not laid out so. */
export function podOfPath(
  filename: string,
): { namespace: string; pod: string; uid: string; container: string } | undefined {
  const container = basename(dirname(filename));
  // Namespace and pod names are DNS labels and subdomains: they have no `_`, so the directory splits in three.
  const parts = basename(dirname(dirname(filename))).split("_");
  if (parts.length !== 3 || parts.some((p) => p === "")) return undefined;
  const [namespace, pod, uid] = parts as [string, string, string];
  return { namespace, pod, uid, container };
}

function metrics(registry: Registry) {
  return {
    lines: new Counter({
      name: "bifrost_collector_kubernetes_lines_read_total",
      help: "Container log entries (joined partial lines count once) read and buffered.",
      registers: [registry],
    }),
    containers: new Gauge({
      name: "bifrost_collector_kubernetes_files_watched",
      help: "Container log files open for tailing.",
      registers: [registry],
    }),
    rotations: new Counter({
      name: "bifrost_collector_kubernetes_file_rotations_total",
      help: "Rotations of container log files, by kind (rename, truncate).",
      labelNames: ["kind"],
      registers: [registry],
    }),
    rejected: new Counter({
      name: "bifrost_collector_kubernetes_lines_rejected_total",
      help: "Container log lines not read as written, by reason: unparsed (neither CRI nor Docker, kept as read), truncated (cut to max_line_bytes).",
      labelNames: ["reason"],
      registers: [registry],
    }),
    paused: new Gauge({
      name: "bifrost_collector_kubernetes_paused",
      help: "1 while container logs wait for room in the full disk buffer.",
      registers: [registry],
    }),
    api: new Counter({
      name: "bifrost_collector_kubernetes_api_requests_total",
      help: "Pod metadata requests to the API server, by outcome (ok, not_found, error).",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}

/** The API server to ask, if any: the configured URL, or the in-cluster one. */
function podMetadata(options: PodLogsOptions, onRequest: (outcome: "ok" | "error" | "not_found") => void) {
  const { api } = options.config;
  const env = options.env ?? process.env;
  if (api.enabled === "false") return undefined;
  const host = env["KUBERNETES_SERVICE_HOST"];
  const url =
    api.url !== ""
      ? api.url
      : host
        ? `https://${host.includes(":") ? `[${host}]` : host}:${env["KUBERNETES_SERVICE_PORT"] ?? "443"}`
        : undefined;
  if (url === undefined) {
    if (api.enabled === "true")
      options.log?.warn("collector.kubernetes.api: no url and not in a cluster; labels come from the path alone");
    return undefined;
  }
  return new PodMetadata({
    url,
    tokenFile: existsSync(api.token_file) ? api.token_file : undefined,
    ca: existsSync(api.ca_file) ? readFileSync(api.ca_file) : undefined,
    timeoutMs: api.timeout_ms,
    refreshMs: api.refresh_ms,
    log: options.log,
    onRequest,
  });
}

/** The chosen pod labels and annotations as label names and values. */
function metadataLabels(info: PodInfo | undefined, config: KubernetesConfig): [string, string][] {
  if (!info) return [];
  const pick = (values: Record<string, string>, keys: string[]) =>
    (keys.includes("*") ? Object.keys(values) : keys.filter((key) => key in values))
      .map((key) => [sanitizeLabelKey(key), values[key]!] as [string, string])
      .filter(([name, value]) => name !== "" && value !== "");
  return [...pick(info.labels, config.pod_labels), ...pick(info.annotations, config.pod_annotations)];
}

export function startPodLogs(options: PodLogsOptions): { stop(): Promise<void> } {
  const { config } = options;
  const m = metrics(options.registry);
  const meta = podMetadata(options, (outcome) => m.api.inc({ outcome }));
  const staticLabels = Object.entries(config.labels);
  const labelsFor = (filename: string): Labels => {
    const pod = podOfPath(filename);
    if (!pod) return labelsOf([...staticLabels, ["filename", filename]]);
    // Path labels win over pod labels of the same name; the `stream` label is the decoder's, per line.
    return labelsOf([
      ...metadataLabels(meta?.get(pod.namespace, pod.pod, pod.uid), config),
      ...staticLabels,
      ["namespace", pod.namespace],
      ["pod", pod.pod],
      ["container", pod.container],
    ]);
  };
  const tail = new FileTail({
    sources: [
      {
        paths: [join(config.pods_root, "*_*_*", "*", "*.log")],
        exclude: [],
        labels: labelsOf([]),
        tenant: options.tenant,
        encoding: "utf8",
        labelsFor,
        decode: () =>
          new ContainerLogDecoder({
            format: config.format,
            maxLineBytes: options.maxLineBytes,
            maxPartialLines: config.max_partial_lines,
            partialTimeoutMs: config.partial_timeout_ms,
            onUnparsed: () => m.rejected.inc({ reason: "unparsed" }),
            onTruncated: () => m.rejected.inc({ reason: "truncated" }),
          }),
        prepare: async (path) => {
          const pod = podOfPath(path);
          if (pod && meta) await meta.load(pod.namespace, pod.pod, pod.uid);
        },
      },
    ],
    batcher: options.batcher,
    ...(options.contract ? { contract: options.contract } : {}),
    onRefused: (_tenant, reason, lines) => m.rejected.inc({ reason }, lines),
    positionsFile: options.positionsFile,
    pollMs: options.pollMs,
    syncMs: options.syncMs,
    rotateWaitMs: options.rotateWaitMs,
    // The CRI header and JSON escaping come on top of the line: the raw line may be longer than the entry.
    maxLineBytes: options.maxLineBytes * 2 + 256,
    maxReadBytes: options.maxReadBytes,
    ...(options.log ? { log: options.log } : {}),
    onLines: (_, n) => m.lines.inc(n),
    onRotation: (kind) => m.rotations.inc({ kind }),
    onTruncatedLine: () => m.rejected.inc({ reason: "truncated" }),
    onWatched: (n) => m.containers.set(n),
    onPaused: (paused) => m.paused.set(paused ? 1 : 0),
  });
  tail.start();
  return { stop: () => tail.stop() };
}
