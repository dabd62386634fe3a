import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../common/log.js";
import type { GroupAlert } from "./payload.js";
import type { Labels } from "../../proto/labels.js";

/** An alert inside a group, with what Alertmanager's merge needs. */
export interface StoredAlert extends GroupAlert {
  /** The end was not given but set by resolve_timeout: a later explicit end wins over it. */
  timeout: boolean;
  /** Increases with every update of the alert: a resolved alert is dropped only if unchanged since it was notified. */
  updated: number;
}

/** What a group last notified (Alertmanager's notification log entry): fingerprints and the time. */
export interface NotificationEntry {
  firing: string[];
  resolved: string[];
  at: number;
}

export interface GroupState {
  key: string;
  labels: Labels;
  hasFlushed: boolean;
  nextFlushAt: number;
  alerts: StoredAlert[];
}

export interface ReceiverState {
  groups: GroupState[];
  notified: Record<string, NotificationEntry>;
}

export interface NotifierState {
  version: 1;
  /** When this state was written (epoch milliseconds). */
  savedAt: number;
  receivers: Record<string, ReceiverState>;
}

/**
 * The notifier's state in one JSON file, replaced atomically (write a temporary file, fsync, rename), so that a
 * crash leaves the previous or the next version, never a torn one. Writes are coalesced: a change during a
 * write causes one more write of the then current state.
 */
export class StateFile {
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => NotifierState,
    private readonly log: Logger,
  ) {}

  /** The saved state; undefined when there is none yet. An unreadable file is set aside and reported. */
  async load(): Promise<NotifierState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      const state = JSON.parse(text) as NotifierState;
      if (state.version !== 1 || typeof state.receivers !== "object" || state.receivers === null)
        throw new Error(`unknown state version ${String(state.version)}`);
      return state;
    } catch (err) {
      const aside = `${this.path}.unreadable-${Date.now()}`;
      await rename(this.path, aside);
      this.log.error({ err, path: this.path, movedTo: aside }, "notifier state unreadable; starting without it");
      return undefined;
    }
  }

  changed(): void {
    this.dirty = true;
    this.writing ??= this.writeWhileDirty();
  }

  /** Resolves once everything changed so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  private async writeWhileDirty(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.write(JSON.stringify(this.snapshot()));
      }
    } catch (err) {
      this.log.error({ err, path: this.path }, "cannot save the notifier state");
    } finally {
      this.writing = undefined;
    }
  }

  private async write(text: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temporary = `${this.path}.tmp-${process.pid}`;
    const file = await open(temporary, "w");
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
  }
}
