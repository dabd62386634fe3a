import { parse } from "yaml";
import { configSchema } from "../config.js";
import { mergeDocuments } from "../common/merge.js";
import {
  REMOTE_SIGNATURE_FILE,
  remoteDocumentProblems,
  SIGNATURE_CONTENT_TYPE,
  sha256Hex,
  signRemoteConfig,
} from "../common/remote-config.js";
import type { SigningKey } from "../common/signing.js";
import type { AgentConfigMap } from "../proto/opamp.js";
import type { RenderedConfig } from "./render.js";

// What the fleet server offers one agent: the rendered document as an AgentConfigMap (for a Bifrost collector with
// its signature beside it, for the collector refuses anything unsigned), or an empty map, which tells a Bifrost
// collector to run its local file alone. The config hash is the document's, not the signature's, so signing
// again (after a restart) does not make an agent apply anything again.

export const EMPTY_HASH = sha256Hex("");

export interface Offer {
  hash: string;
  revision: string;
  config: AgentConfigMap;
}

/** Checks collector documents as the collector will (the schema of --check-config), once per distinct document. */
export class OfferChecker {
  private schema: ReturnType<typeof configSchema> | undefined;
  private readonly problems = new Map<string, string | null>();

  /** Why a rendered collector configuration cannot be offered; undefined when it can. */
  problem(rendered: RenderedConfig): string | undefined {
    if (!rendered.collector) return undefined;
    let problem = this.problems.get(rendered.hash);
    if (problem === undefined) {
      const document: unknown = parse(rendered.body.toString("utf8"));
      const refused = remoteDocumentProblems(document);
      this.schema ??= configSchema();
      const result = this.schema.safeParse(mergeDocuments({}, document));
      const issues = result.success
        ? []
        : result.error.issues.map(
            (i) =>
              `${i.path.join(".")}: ${i.code === "unrecognized_keys" ? `unknown key ${i.keys.join(", ")}` : i.message}`,
          );
      problem = [...refused, ...issues].join("; ") || null;
      if (this.problems.size > 10_000) this.problems.clear();
      this.problems.set(rendered.hash, problem);
    }
    return problem ?? undefined;
  }
}

/** Signs per node and keeps each node's signature while its configuration stays the same. */
export class OfferSigner {
  private readonly signed = new Map<string, { hash: string; file: Buffer }>();

  constructor(private readonly key: SigningKey | undefined) {}

  get signs(): boolean {
    return this.key !== undefined;
  }

  offer(node: string, revision: string, rendered: RenderedConfig | undefined, nowMs: number): Offer {
    if (rendered === undefined) return { hash: EMPTY_HASH, revision, config: {} };
    const config: AgentConfigMap = { [rendered.file]: { body: rendered.body, contentType: rendered.contentType } };
    if (rendered.collector && this.key !== undefined) {
      let signature = this.signed.get(node);
      if (signature?.hash !== rendered.hash) {
        const file = Buffer.from(JSON.stringify(signRemoteConfig(this.key, node, rendered.body, nowMs)));
        signature = { hash: rendered.hash, file };
        this.signed.set(node, signature);
      }
      config[REMOTE_SIGNATURE_FILE] = { body: signature.file, contentType: SIGNATURE_CONTENT_TYPE };
    }
    return { hash: rendered.hash, revision, config };
  }
}
