import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Logger } from "../../../common/log.js";

// Pod labels and annotations from the API server: GET /api/v1/namespaces/<ns>/pods/<name> once per pod (before
// its first file is read), again after `refreshMs`, with the pod's service account token and the cluster's
// CA, as client-go's in-cluster config does. Answers are cached by pod uid; while the API server cannot be
// reached, or answers with an error, lines are read and labelled from the path alone, and the pod is asked for
// again after a backoff. A plain GET per new pod is all the collector needs: a node runs tens of pods, and a
// list/watch of every pod would hold the whole cluster's pods in an edge node's memory.

export interface PodMetadataOptions {
  url: string;
  tokenFile?: string | undefined;
  ca?: Buffer | undefined;
  timeoutMs: number;
  refreshMs: number;
  log?: Logger | undefined;
  onRequest?: (outcome: "ok" | "error" | "not_found") => void;
}

export interface PodInfo {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

const RETRY_MS = 30_000;
const MAX_PODS = 4096;

export class PodMetadata {
  private readonly cache = new Map<string, { info: PodInfo | undefined; at: number; loading?: Promise<void> }>();

  constructor(private readonly options: PodMetadataOptions) {}

  /** What is known of the pod now; asks again in the background once it is stale. */
  get(namespace: string, pod: string, uid: string): PodInfo | undefined {
    const known = this.cache.get(uid);
    if (!known || Date.now() - known.at >= (known.info ? this.options.refreshMs : RETRY_MS))
      void this.load(namespace, pod, uid);
    return known?.info;
  }

  /** Asks the API server for the pod unless its answer is fresh; never rejects. */
  load(namespace: string, pod: string, uid: string): Promise<void> {
    const known = this.cache.get(uid);
    if (known?.loading) return known.loading;
    if (known && Date.now() - known.at < (known.info ? this.options.refreshMs : RETRY_MS)) return Promise.resolve();
    const entry = { info: known?.info, at: known?.at ?? 0, loading: undefined as Promise<void> | undefined };
    this.cache.delete(uid);
    this.cache.set(uid, entry);
    // Pods come and go for the life of a node: the longest unasked-for are forgotten.
    if (this.cache.size > MAX_PODS) this.cache.delete(this.cache.keys().next().value!);
    entry.loading = this.fetchPod(namespace, pod).then(
      (found) => {
        // A pod of the same name may have replaced the one whose logs these are: its metadata is not theirs.
        if (found && found.uid !== uid) found = undefined;
        this.options.onRequest?.(found ? "ok" : "not_found");
        entry.info = found?.info ?? entry.info;
        entry.at = Date.now();
        entry.loading = undefined;
      },
      (err: Error) => {
        this.options.onRequest?.("error");
        this.options.log?.warn(
          { err: err.message, namespace, pod },
          "cannot get pod metadata from the API server; labelling its logs from the path",
        );
        entry.at = Date.now();
        entry.loading = undefined;
      },
    );
    return entry.loading;
  }

  private fetchPod(namespace: string, pod: string): Promise<{ uid: string; info: PodInfo } | undefined> {
    const url = new URL(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`,
      this.options.url,
    );
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.options.tokenFile)
      headers["Authorization"] = `Bearer ${readFileSync(this.options.tokenFile, "utf8").trim()}`;
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { headers, timeout: this.options.timeoutMs, ...(this.options.ca ? { ca: this.options.ca } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          res.on("data", (chunk: Buffer) => {
            bytes += chunk.length;
            // A pod object is a few KiB; anything near this is not one.
            if (bytes > 4 << 20) req.destroy(new Error("pod object larger than 4 MiB"));
            else chunks.push(chunk);
          });
          res.on("end", () => {
            if (res.statusCode === 404) return resolve(undefined);
            if (res.statusCode !== 200)
              return reject(
                new Error(`API server answered ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 200)}`),
              );
            try {
              const doc = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
                metadata?: { uid?: unknown; labels?: unknown; annotations?: unknown };
              };
              const strings = (value: unknown) =>
                Object.fromEntries(
                  Object.entries(typeof value === "object" && value !== null ? value : {}).filter(
                    (e): e is [string, string] => typeof e[1] === "string",
                  ),
                );
              resolve({
                uid: String(doc.metadata?.uid ?? ""),
                info: { labels: strings(doc.metadata?.labels), annotations: strings(doc.metadata?.annotations) },
              });
            } catch (err) {
              reject(err as Error);
            }
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${this.options.timeoutMs} ms`)));
      req.on("error", reject);
      req.end();
    });
  }
}
