import { type FSWatcher, readFileSync, watch } from "node:fs";
import { dirname, extname, isAbsolute } from "node:path";
import { globSync } from "tinyglobby";
import { parse as parseYaml } from "yaml";
import { formatPrometheusDuration } from "../../common/go/duration-format.js";
import { durationMs } from "./scrape-config.js";
import { labelsOf, type Labels, persistedLabelsText } from "../../proto/labels.js";
import { LABEL_NAME } from "../../proto/validate.js";
import { relabel, type RelabelRule } from "../processing/relabel.js";

// Scrape targets as Prometheus 2.42 makes them: target groups from static_configs and file_sd_configs, each
// target's labels filled in (job, __address__, __scheme__, __metrics_path__, __scrape_interval__,
// __scrape_timeout__, __param_<name>), relabel_configs applied, then a default port added to an address without
// one, `__meta_*` labels removed, `instance` defaulted to the address (scrape/target.go, PopulateLabels).

/** Target groups as service discovery gives them: targets (addresses) sharing labels. */
export interface TargetGroup {
  targets: string[];
  labels: Labels;
}

/** What the target labels need of a job. */
export interface TargetJob {
  name: string;
  intervalMs: number;
  timeoutMs: number;
  metricsPath: string;
  scheme: string;
  params: Record<string, string[]>;
  relabel: RelabelRule[];
}

export interface Target {
  /** Identity across discovery updates: the job, the URL and every label. */
  key: string;
  job: string;
  url: string;
  /** Labels after relabeling, `__`-prefixed ones included (the URL and timing come from them). */
  labels: Labels;
  /** The labels each of its series gets: those without a `__` prefix. */
  publicLabels: Labels;
  discoveredLabels: Labels;
  intervalMs: number;
  timeoutMs: number;
}

export interface TargetSet {
  active: Target[];
  /** Discovered labels of the targets that relabel_configs dropped. */
  dropped: Labels[];
  /** Targets left out for a fault, such as an invalid scrape interval label. */
  errors: string[];
}

/** Go's net.SplitHostPort succeeding: `host:port` or `[v6]:port`. */
function hasPort(address: string): boolean {
  if (address.startsWith("[")) return /^\[[^\]]*\]:[^:]*$/.test(address);
  const colons = address.split(":").length - 1;
  return colons === 1;
}

/** Whether appending `:1234` would make the address splittable (so it lacks only a port). */
function lacksPort(address: string): boolean {
  return !hasPort(address) && hasPort(`${address}:1234`);
}

/** Go's url.Values.Encode: keys sorted, each value escaped as QueryEscape does. */
function encodeQuery(params: Map<string, string[]>): string {
  const escape = (text: string) =>
    encodeURIComponent(text)
      .replace(/%20/g, "+")
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [...params.keys()]
    .sort()
    .flatMap((key) => params.get(key)!.map((value) => `${escape(key)}=${escape(value)}`))
    .join("&");
}

function targetUrl(labels: Labels, params: Record<string, string[]>): string {
  const query = new Map<string, string[]>(Object.entries(params).map(([k, v]) => [k, [...v]]));
  for (const name of Object.keys(labels).sort()) {
    if (!name.startsWith("__param_")) continue;
    const key = name.slice("__param_".length);
    const values = query.get(key);
    if (values !== undefined && values.length > 0) values[0] = labels[name]!;
    else query.set(key, [labels[name]!]);
  }
  const encoded = encodeQuery(query);
  return `${labels["__scheme__"]}://${labels["__address__"]}${labels["__metrics_path__"]}${encoded ? `?${encoded}` : ""}`;
}

/** The targets of a job's groups: active ones with their URL and labels, dropped ones, and the refused. */
export function targetsOf(job: TargetJob, groups: TargetGroup[]): TargetSet {
  const set: TargetSet = { active: [], dropped: [], errors: [] };
  const seen = new Set<string>();
  for (const group of groups) {
    group.targets.forEach((address, i) => {
      const discovered: Labels = Object.create(null);
      discovered["__address__"] = address;
      for (const name in group.labels) if (name !== "__address__") discovered[name] = group.labels[name]!;
      const defaults: [string, string][] = [
        ["job", job.name],
        ["__scrape_interval__", formatPrometheusDuration(BigInt(job.intervalMs) * 1_000_000n)],
        ["__scrape_timeout__", formatPrometheusDuration(BigInt(job.timeoutMs) * 1_000_000n)],
        ["__metrics_path__", job.metricsPath],
        ["__scheme__", job.scheme],
      ];
      for (const [name, value] of defaults) if (!discovered[name]) discovered[name] = value;
      for (const key of Object.keys(job.params).sort()) {
        const values = job.params[key]!;
        if (values.length > 0) discovered[`__param_${key}`] = values[0]!;
      }
      for (const name in discovered) if (discovered[name] === "") delete discovered[name];
      const result = populate(discovered, job);
      if ("error" in result) set.errors.push(`instance ${i} in group ${JSON.stringify(address)}: ${result.error}`);
      else if (result.labels === null) set.dropped.push(discovered);
      else {
        const url = targetUrl(result.labels, job.params);
        const key = `${job.name}\u0000${url}\u0000${persistedLabelsText(result.labels)}`;
        if (seen.has(key)) return;
        seen.add(key);
        const publicLabels = labelsOf(Object.entries(result.labels).filter(([name]) => !name.startsWith("__")));
        set.active.push({
          key,
          job: job.name,
          url,
          labels: result.labels,
          publicLabels,
          discoveredLabels: discovered,
          intervalMs: result.intervalMs,
          timeoutMs: result.timeoutMs,
        });
      }
    });
  }
  return set;
}

function populate(
  discovered: Labels,
  job: TargetJob,
): { labels: Labels | null; intervalMs: number; timeoutMs: number } | { error: string } {
  const relabeled = relabel(discovered, job.relabel);
  if (relabeled === null) return { labels: null, intervalMs: 0, timeoutMs: 0 };
  let address = relabeled["__address__"] ?? "";
  if (address === "") return { error: "no address" };
  if (lacksPort(address)) {
    const scheme = relabeled["__scheme__"] ?? "";
    if (scheme === "http" || scheme === "") address += ":80";
    else if (scheme === "https") address += ":443";
    else return { error: `invalid scheme: ${JSON.stringify(job.scheme)}` };
    relabeled["__address__"] = address;
  }
  if (address.includes("/")) return { error: `${JSON.stringify(address)} is not a valid hostname` };
  const interval = relabeled["__scrape_interval__"] ?? "";
  const intervalMs = durationMs(interval);
  if (intervalMs === undefined)
    return { error: `error parsing scrape interval: not a valid duration string: ${JSON.stringify(interval)}` };
  if (intervalMs === 0) return { error: "scrape interval cannot be 0" };
  const timeout = relabeled["__scrape_timeout__"] ?? "";
  const timeoutMs = durationMs(timeout);
  if (timeoutMs === undefined)
    return { error: `error parsing scrape timeout: not a valid duration string: ${JSON.stringify(timeout)}` };
  if (timeoutMs === 0) return { error: "scrape timeout cannot be 0" };
  if (timeoutMs > intervalMs)
    return {
      error: `scrape timeout cannot be greater than scrape interval (${JSON.stringify(timeout)} > ${JSON.stringify(interval)})`,
    };
  for (const name of Object.keys(relabeled)) if (name.startsWith("__meta_")) delete relabeled[name];
  relabeled["instance"] ??= address;
  return { labels: relabeled, intervalMs, timeoutMs };
}

/** Why a file_sd file's content is not a list of target groups, or its groups. */
export function readTargetFile(path: string): TargetGroup[] {
  const ext = extname(path).toLowerCase();
  const text = readFileSync(path, "utf8");
  const content: unknown = ext === ".json" ? JSON.parse(text) : parseYaml(text);
  if (content === null || content === undefined) return [];
  if (!Array.isArray(content)) throw new Error("expected a list of target groups");
  return content.map((group: unknown, i) => {
    if (typeof group !== "object" || group === null || Array.isArray(group))
      throw new Error(`target group ${i}: expected an object with targets and labels`);
    const { targets = [], labels = {}, ...rest } = group as { targets?: unknown; labels?: unknown };
    if (Object.keys(rest).length > 0)
      throw new Error(`target group ${i}: unknown keys ${Object.keys(rest).join(", ")}`);
    if (!Array.isArray(targets) || targets.some((t) => typeof t !== "string"))
      throw new Error(`target group ${i}: targets must be a list of strings`);
    if (typeof labels !== "object" || labels === null || Array.isArray(labels))
      throw new Error(`target group ${i}: labels must be an object`);
    for (const [name, value] of Object.entries(labels)) {
      if (!LABEL_NAME.test(name))
        throw new Error(`target group ${i}: ${JSON.stringify(name)} is not a valid label name`);
      if (typeof value !== "string") throw new Error(`target group ${i}: label ${name} must be a string`);
    }
    return {
      targets: targets as string[],
      labels: labelsOf([...Object.entries(labels as Record<string, string>), ["__meta_filepath", path]]),
    };
  });
}

/**
 * file_sd_configs: the files matching the patterns, read again whenever a watched directory changes and every
 * refresh interval. A file that cannot be read or parsed keeps the groups it had (Prometheus does the same);
 * a file that is gone takes its groups with it.
 */
export class FileDiscovery {
  private readonly groups = new Map<string, TargetGroup[]>();
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;

  constructor(
    private readonly patterns: string[],
    private readonly refreshMs: number,
    private readonly onChange: () => void,
    private readonly onError: (file: string, err: Error) => void,
  ) {}

  start(): void {
    this.refresh();
    for (const dir of new Set(this.patterns.map((p) => dirname(p)))) {
      try {
        this.watchers.push(watch(dir, () => this.soon()));
      } catch (err) {
        this.onError(dir, err as Error);
      }
    }
    this.timer = setInterval(() => this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.pending);
    for (const watcher of this.watchers) watcher.close();
  }

  /** Every group of every file, in file order. */
  targetGroups(): TargetGroup[] {
    return [...this.groups.keys()].sort().flatMap((file) => this.groups.get(file)!);
  }

  /** Editors write a file in several steps: one read after the changes settle. */
  private soon(): void {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh(), 100);
    this.pending.unref();
  }

  refresh(): void {
    const files = new Set(
      this.patterns.flatMap((pattern) =>
        // A match is named as its pattern is written: absolute, or relative to the working directory.
        globSync(pattern, { absolute: isAbsolute(pattern), onlyFiles: true, expandDirectories: false }).filter((f) =>
          [".json", ".yml", ".yaml"].includes(extname(f).toLowerCase()),
        ),
      ),
    );
    let changed = false;
    for (const file of [...this.groups.keys()]) {
      if (!files.has(file)) {
        this.groups.delete(file);
        changed = true;
      }
    }
    for (const file of files) {
      try {
        const groups = readTargetFile(file);
        if (JSON.stringify(groups) !== JSON.stringify(this.groups.get(file))) {
          this.groups.set(file, groups);
          changed = true;
        }
      } catch (err) {
        this.onError(file, err as Error);
      }
    }
    if (changed) this.onChange();
  }
}
