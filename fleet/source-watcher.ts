import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../common/log.js";
import { gitCommit, parseRevision, readSourceFiles, type Revision, revisionId, SourceError } from "./source.js";

// Watches the GitOps directory as the ruler watches its rule directory: polled, compared by content, so that any
// way a checkout is updated (git pull, a symlink swap by git-sync, an editor's in-place write) is seen. A change
// is taken once the directory reads the same twice in a row, a short while apart, so that a checkout in progress
// is not taken half-written; a revision with a problem in any file is refused whole, the last good one stays,
// and why is on /ready and in bifrost_fleet_source_problems.

const SETTLE_MS = 250;

export interface SourceWatcherOptions {
  dir: string;
  pollMs: number;
  registry: Registry;
  log: Logger;
  /** Called with each new good revision, in order; the next poll waits for it. */
  onRevision(revision: Revision): Promise<void>;
}

export class SourceWatcher {
  private lastSeen = "";
  private problems: string[] = [];
  private current: Revision | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  private readonly metrics;

  constructor(private readonly options: SourceWatcherOptions) {
    this.metrics = {
      problems: new Gauge({
        name: "bifrost_fleet_source_problems",
        help: "Problems in the fleet's source directory at the last read; 0 when the newest revision was taken.",
        registers: [options.registry],
      }),
      reloads: new Counter({
        name: "bifrost_fleet_source_reloads_total",
        help: "Changed source directory contents read, by result (applied, failed).",
        labelNames: ["result"],
        registers: [options.registry],
      }),
      revision: new Gauge({
        name: "bifrost_fleet_source_revision_info",
        help: "1 for the source revision (and git commit) in force.",
        labelNames: ["revision", "commit"],
        registers: [options.registry],
      }),
    };
  }

  /** The revision in force, if any was taken yet. */
  get revision(): Revision | undefined {
    return this.current;
  }

  /** The last read's problems, each file:line:column: message. */
  get loadProblems(): string[] {
    return this.problems;
  }

  /** null when the newest contents are in force, otherwise why not (for /ready). */
  readiness(): string | null {
    if (this.problems.length === 0) return null;
    return `${this.options.dir} has problems, the last good revision stays in force:\n  ${this.problems.join("\n  ")}`;
  }

  /** Reads the directory now and then at every poll. `current` is the revision already in force (from the store). */
  async start(current: Revision | undefined): Promise<void> {
    this.current = current;
    if (current !== undefined) this.lastSeen = current.id;
    await this.poll();
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.polling = this.poll()
          .catch((err: unknown) => this.options.log.error({ err }, "reading the fleet source failed"))
          .finally(loop);
      }, this.options.pollMs);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  private read(): Record<string, string> | undefined {
    try {
      return readSourceFiles(this.options.dir);
    } catch (err) {
      this.setProblems([`${this.options.dir}: ${(err as Error).message}`]);
      return undefined;
    }
  }

  private setProblems(problems: string[]): void {
    this.problems = problems;
    this.metrics.problems.set(problems.length);
  }

  /** One look at the directory; resolves once a new revision (if any) has been handed over. */
  async poll(): Promise<void> {
    const files = this.read();
    if (files === undefined) return;
    // An empty directory is a checkout not there yet (or being replaced), not an order to manage nothing.
    if (Object.keys(files).length === 0) {
      this.setProblems([`${this.options.dir} holds no YAML files`]);
      return;
    }
    const id = revisionId(files);
    if (id === this.lastSeen) return;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const again = this.read();
    if (again === undefined || revisionId(again) !== id) return;
    this.lastSeen = id;
    let revision: Revision;
    try {
      revision = parseRevision(files, gitCommit(this.options.dir));
    } catch (err) {
      if (!(err instanceof SourceError)) throw err;
      this.setProblems(err.problems);
      this.metrics.reloads.inc({ result: "failed" });
      this.options.log.error(
        { problems: err.problems, revision: id },
        "fleet source has problems; keeping the last good revision",
      );
      return;
    }
    this.setProblems([]);
    this.metrics.reloads.inc({ result: "applied" });
    this.metrics.revision.reset();
    this.metrics.revision.set({ revision: id.slice(0, 12), commit: revision.commit.slice(0, 12) }, 1);
    this.current = revision;
    this.options.log.info({ revision: id, commit: revision.commit }, "fleet source revision taken");
    await this.options.onRevision(revision);
  }
}
