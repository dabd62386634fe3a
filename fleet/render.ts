import { stringify } from "yaml";
import { canonicalDocument, type Document, mergeDocuments } from "../common/merge.js";
import { COLLECTOR_AGENT_TYPE, REMOTE_CONFIG_FILE, sha256Hex, YAML_CONTENT_TYPE } from "../common/remote-config.js";
import type { Selector } from "../proto/fleet.js";
import type { Revision } from "./source.js";

// The configuration one agent gets from a revision: for a Bifrost collector, the base with every matching fragment
// laid over it in priority order, as YAML; for another agent type, its matching fragments alone, as JSON (what
// OpenTelemetry's OpAMP clients decode). The document is written with its keys sorted, so that its hash (the
// OpAMP config hash) depends on what it says, not on how the files were written. Agents with the same matching
// fragments get the same document, rendered once.

export interface RenderedConfig {
  /** Lowercase hex SHA-256 of `body`. */
  hash: string;
  body: Buffer;
  /** Its name in the AgentConfigMap, and its content type. */
  file: string;
  contentType: string;
  /** The fragments laid over the base, in order. */
  fragments: string[];
  /** Whether the agent is a Bifrost collector: its configuration is signed and checked by the collector. */
  collector: boolean;
}

export interface RenderTarget {
  agentType: string;
  labels: Record<string, string>;
}

export function selectorMatches(selector: Selector, labels: Record<string, string>): boolean {
  for (const [name, wanted] of Object.entries(selector)) {
    const value = labels[name];
    if (value === undefined) return false;
    if (Array.isArray(wanted) ? !wanted.includes(value) : wanted !== value) return false;
  }
  return true;
}

export class Renderer {
  private readonly cache = new Map<string, RenderedConfig | null>();

  /** The configuration `target` gets from `revision`; undefined when the revision offers it none. */
  render(revision: Revision, target: RenderTarget): RenderedConfig | undefined {
    const collector = target.agentType === COLLECTOR_AGENT_TYPE;
    const matching = revision.fragments.filter(
      (f) => f.agentType === target.agentType && selectorMatches(f.selector, target.labels),
    );
    const key = `${revision.id}\u0000${target.agentType}\u0000${matching.map((f) => f.id).join("\u0000")}`;
    let rendered = this.cache.get(key);
    if (rendered === undefined) {
      rendered = this.build(
        revision,
        collector,
        matching.map((f) => f.id),
        matching.map((f) => f.config),
      );
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, rendered);
    }
    return rendered ?? undefined;
  }

  private build(revision: Revision, collector: boolean, ids: string[], configs: Document[]): RenderedConfig | null {
    const hasBase = collector && Object.keys(revision.base).length > 0;
    if (!hasBase && configs.length === 0) return null;
    let document: unknown = collector ? revision.base : {};
    for (const config of configs) document = mergeDocuments(document, config);
    const canonical = canonicalDocument(document);
    const body = Buffer.from(
      collector ? stringify(canonical, { lineWidth: 0 }) : `${JSON.stringify(canonical, null, 2)}\n`,
    );
    return {
      hash: sha256Hex(body),
      body,
      file: collector ? REMOTE_CONFIG_FILE : "config.json",
      contentType: collector ? YAML_CONTENT_TYPE : "application/json",
      fragments: ids,
      collector,
    };
  }
}
