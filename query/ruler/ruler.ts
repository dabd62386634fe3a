import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { TENANT_ID } from "../../common/config.js";
import type { Logger } from "../../common/log.js";
import type { Labels } from "../../proto/labels.js";
import type { SampleBatch, Store } from "../../storage/store.js";
import type { Language } from "./expr.js";
import { GroupRunner } from "./group.js";
import type { AlertNotice, AlertSink } from "./notice.js";
import { parseRuleFile, RuleFileError, type RuleGroup } from "./rules.js";
import { restoreAlerts } from "./state.js";
import { TickStore } from "./tick-store.js";

// The ruler of the query service. Rule files come from `rule_files` and from `rules_dir`, laid out as Loki's
// ruler lays out its local storage: `<rules_dir>/<tenant>/*.yaml` holds one tenant's rules, and files directly in
// `<rules_dir>` (like those of `rule_files`) run for every tenant of `tenants`. The directory is polled for changed
// contents, which works for any way a GitOps tool updates it (in-place writes, renames, symlink swaps); a file that
// fails validation keeps its previous rules and its errors are reported. Groups are evaluated at multiples of
// their interval, each evaluation written to the store as one idempotent batch.

export interface RulerOptions {
  store: Store;
  log: Logger;
  ruleFiles: string[];
  rulesDir?: string;
  /** Tenants of the files in rule_files and directly in rules_dir. */
  tenants: string[];
  defaultIntervalMs: number;
  /** 0 disables watching. */
  pollIntervalMs: number;
  outageToleranceMs: number;
  externalURL: string;
  externalLabels?: Labels;
  maxSeries: number;
  now?: () => number;
}

export interface RuleSource {
  path: string;
  tenants: string[];
  /** The language of expressions that parse as both PromQL and LogQL (parseRuleFile's defaultLanguage). */
  language: Language;
}

interface LoadedFile {
  hash: string;
  groups: RuleGroup[];
}

const RULE_FILE = /\.ya?ml$/;

export class Ruler {
  private readonly now: () => number;
  private readonly sinks: AlertSink[] = [];
  private runners = new Map<string, GroupRunner>();
  private readonly files = new Map<string, LoadedFile>();
  private problems: string[] = [];
  private failed = new Set<string>();
  private evalTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private externalURL: string;

  constructor(private readonly options: RulerOptions) {
    this.now = options.now ?? Date.now;
    this.externalURL = options.externalURL;
  }

  addSink(sink: AlertSink): void {
    this.sinks.push(sink);
  }

  /** The validation errors of the last load, each `file:line:column: message`. */
  get loadProblems(): string[] {
    return this.problems;
  }

  /** How many rule files the last load could not read or refused; those that loaded before keep their rules. */
  get failedFiles(): number {
    return this.failed.size;
  }

  /** The groups of a tenant, in file then group order. */
  groups(tenant: string): GroupRunner[] {
    return [...this.runners.values()].filter((runner) => runner.tenant === tenant);
  }

  /** Reads the rule files again; groups whose file changed are replaced, keeping their alerts. Returns the problems. */
  reload(): string[] {
    this.problems = [];
    this.failed = new Set();
    const sources = ruleSources(this.options, this.problems);
    if (this.problems.length > 0 && this.options.rulesDir !== undefined) this.failed.add(this.options.rulesDir);
    const runners = new Map<string, GroupRunner>();
    const seenFiles = new Set<string>();
    for (const source of sources) {
      seenFiles.add(source.path);
      let text: string;
      try {
        text = readFileSync(source.path, "utf8");
      } catch (err) {
        this.problems.push(`${source.path}: ${(err as Error).message}`);
        this.failed.add(source.path);
        continue;
      }
      const hash = createHash("sha256").update(text).digest("hex");
      let loaded = this.files.get(source.path);
      if (loaded?.hash !== hash) {
        try {
          loaded = {
            hash,
            groups: parseRuleFile(source.path, text, this.options.defaultIntervalMs, source.language),
          };
          this.files.set(source.path, loaded);
        } catch (err) {
          if (!(err instanceof RuleFileError)) throw err;
          this.problems.push(...err.problems);
          this.failed.add(source.path);
        }
      }
      for (const group of loaded?.groups ?? []) {
        for (const tenant of source.tenants) {
          const runner = new GroupRunner(tenant, group, {
            externalURL: this.externalURL,
            externalLabels: this.options.externalLabels ?? {},
          });
          const id = `${tenant}\0${runner.key}`;
          const previous = this.runners.get(id);
          if (previous !== undefined && previous.group === group) runners.set(id, previous);
          else {
            if (previous !== undefined) runner.adopt(previous);
            else runner.nextEvalMs = alignDown(this.now(), group.intervalMs);
            runners.set(id, runner);
          }
        }
      }
    }
    for (const path of this.files.keys()) if (!seenFiles.has(path)) this.files.delete(path);
    this.runners = runners;
    for (const problem of this.problems) this.options.log.error({ problem }, "invalid rule file");
    return this.problems;
  }

  /**
   * Evaluates every group whose time has come, at its scheduled time (missed evaluations are skipped); then writes
   * all their samples in one store call, one idempotent batch per group and evaluation time, and notifies the sinks.
   */
  async evaluateDue(): Promise<void> {
    const now = this.now();
    const due = [...this.runners.values()].filter((runner) => runner.nextEvalMs <= now);
    const view = new TickStore(this.options.store);
    const results = (await Promise.all(due.map((runner) => this.evaluate(runner, now, view)))).filter(
      (r) => r !== undefined,
    );
    const batches = results.map((r) => r.batch).filter((b) => b.series.length > 0);
    if (batches.length > 0) {
      try {
        await this.options.store.appendSamples(batches);
      } catch (err) {
        this.options.log.warn({ err }, "rule results could not be written");
        // As Prometheus does when appending a rule's samples fails: the rules whose results were lost are unhealthy.
        for (const { runner, batch } of results)
          if (batch.series.length > 0) runner.fail(`rule results could not be written: ${(err as Error).message}`);
      }
    }
    for (const { notices } of results) {
      if (notices.length === 0) continue;
      for (const sink of this.sinks) {
        try {
          sink.send(notices);
        } catch (err) {
          // One failing sink must not keep the alerts from the others.
          this.options.log.error({ err }, "an alert sink failed");
        }
      }
    }
  }

  private async evaluate(
    runner: GroupRunner,
    now: number,
    view: TickStore,
  ): Promise<{ runner: GroupRunner; batch: SampleBatch; notices: AlertNotice[] } | undefined> {
    const { store, maxSeries, log } = this.options;
    const timeMs = Math.max(runner.nextEvalMs, alignDown(now, runner.group.intervalMs));
    runner.nextEvalMs = timeMs + runner.group.intervalMs;
    try {
      if (!runner.restored) {
        runner.restore(
          await restoreAlerts(
            store,
            runner.tenant,
            runner.key,
            runner.alertNames(),
            timeMs,
            this.options.outageToleranceMs,
          ),
        );
      }
      const { series, notices } = await runner.evaluate(
        { store: view, tenant: runner.tenant, maxSeries },
        timeMs,
        (recorded) => view.addRecorded(runner.tenant, recorded),
      );
      return {
        runner,
        batch: { id: `ruler/${runner.tenant}/${runner.key}:${timeMs}`, tenant: runner.tenant, series },
        notices,
      };
    } catch (err) {
      log.warn({ err, group: runner.group.name, tenant: runner.tenant }, "rule group evaluation failed");
      runner.fail((err as Error).message, timeMs);
      return undefined;
    }
  }

  /** Loads the rules and evaluates them on schedule until stop(); `listenURL` is the external URL if none is configured. */
  start(listenURL: string): void {
    if (this.stopped) return;
    if (this.externalURL === "") this.externalURL = listenURL;
    this.reload();
    const { pollIntervalMs } = this.options;
    if (pollIntervalMs > 0) this.pollTimer = setInterval(() => this.reload(), pollIntervalMs);
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    const next = Math.min(...[...this.runners.values()].map((runner) => runner.nextEvalMs), this.now() + 1000);
    this.evalTimer = setTimeout(
      () => {
        this.running = this.evaluateDue().finally(() => this.schedule());
      },
      Math.max(0, next - this.now()),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.evalTimer);
    clearInterval(this.pollTimer);
    await this.running;
  }
}

/**
 * Where rule files come from: `rule_files` (Prometheus's key, so an expression valid in both languages is PromQL)
 * and `rules_dir` (Loki's layout of its ruler storage, so such an expression is LogQL). A directory that cannot be
 * read adds to `problems`.
 */
export function ruleSources(
  options: Pick<RulerOptions, "ruleFiles" | "rulesDir" | "tenants">,
  problems: string[],
): RuleSource[] {
  const { ruleFiles, rulesDir, tenants } = options;
  const sources: RuleSource[] = ruleFiles.map((path) => ({ path, tenants, language: "promql" }));
  if (rulesDir === undefined) return sources;
  let entries: string[];
  try {
    entries = readdirSync(rulesDir).sort();
  } catch (err) {
    problems.push(`${rulesDir}: ${(err as Error).message}`);
    return sources;
  }
  for (const entry of entries) {
    if (entry.startsWith(".")) continue;
    const path = join(rulesDir, entry);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat?.isFile() && RULE_FILE.test(entry)) sources.push({ path, tenants, language: "logql" });
    else if (stat?.isDirectory() && TENANT_ID.test(entry)) {
      for (const file of readdirSync(path).sort()) {
        if (
          !file.startsWith(".") &&
          RULE_FILE.test(file) &&
          statSync(join(path, file), { throwIfNoEntry: false })?.isFile()
        ) {
          sources.push({ path: join(path, file), tenants: [entry], language: "logql" });
        }
      }
    }
  }
  return sources;
}

function alignDown(timeMs: number, intervalMs: number): number {
  return Math.floor(timeMs / intervalMs) * intervalMs;
}
