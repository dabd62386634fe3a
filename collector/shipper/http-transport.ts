import { type ClientTls, post, retryAfterMs } from "../../common/http-client.js";
import { BATCHES_PATH, FRAMES_CONTENT_TYPE, joinFrames } from "../../proto/frames.js";
import { type BatchRecord, RetryLaterError, type Transport } from "../../common/transport.js";

export interface HttpTransportOptions {
  /** The aggregator's listener, http(s)://host:port. */
  url: string;
  /** Bearer token; empty sends none. */
  token: string;
  tls: ClientTls;
  timeoutMs: number;
  /** Frames per request up to this many bytes, but at least one. */
  maxRequestBytes: number;
  /** A record the aggregator refused as undecodable or invalid: no retry can change that, so it is dropped. */
  onInvalid: (reason: string, message: string) => void;
}

interface Refusal {
  error?: string;
  rejected?: { index: number; reason: string; message: string }[];
}

/**
 * For sites that cannot reach Kafka: POSTs the disk buffer's records, which are batch frames already, to an
 * aggregator (proto/frames.ts). The aggregator answers 2xx only once the batches are in its store, so the
 * shipper's cursor moves only then; a replay after a lost answer is absorbed by the store's per-batch
 * idempotency. 429 and 503 carry Retry-After, which the shipper waits out.
 */
export class HttpTransport implements Transport {
  private readonly endpoint: string;

  constructor(private readonly options: HttpTransportOptions) {
    this.endpoint = new URL(BATCHES_PATH, options.url).href;
  }

  async send(records: BatchRecord[]): Promise<void> {
    let request: BatchRecord[] = [];
    let bytes = 0;
    for (const record of records) {
      if (request.length > 0 && bytes + record.payload.length > this.options.maxRequestBytes) {
        await this.post(request);
        request = [];
        bytes = 0;
      }
      request.push(record);
      bytes += record.payload.length + 4;
    }
    if (request.length > 0) await this.post(request);
  }

  private async post(records: BatchRecord[]): Promise<void> {
    const { token, tls, timeoutMs } = this.options;
    const headers: Record<string, string> = {
      "Content-Type": FRAMES_CONTENT_TYPE,
      ...(token === "" ? {} : { Authorization: `Bearer ${token}` }),
    };
    let pending = records;
    while (pending.length > 0) {
      const response = await post(this.endpoint, joinFrames(pending.map((r) => r.payload)), {
        headers,
        timeoutMs,
        tls,
      });
      if (response.status >= 200 && response.status < 300) return;
      const refusal = parseRefusal(response.text);
      const reason = refusal?.error ?? response.text.trim().slice(0, 500);
      if (response.status === 429 || response.status === 503) {
        throw new RetryLaterError(
          `the aggregator answered ${response.status}: ${reason}`,
          retryAfterMs(response.retryAfter),
        );
      }
      const rejected = response.status === 400 ? (refusal?.rejected ?? []) : [];
      // Only frames named by index are dropped; any other refusal (a token, a certificate) is kept and retried,
      // as fixing the configuration on either side lets the buffer drain.
      if (rejected.length === 0) throw new Error(`the aggregator answered ${response.status}: ${reason}`);
      const dropped = new Set<number>();
      for (const r of rejected) {
        if (!Number.isInteger(r.index) || r.index < 0 || r.index >= pending.length || dropped.has(r.index)) continue;
        dropped.add(r.index);
        this.options.onInvalid(r.reason, r.message);
      }
      if (dropped.size === 0) throw new Error(`the aggregator answered 400 naming no frame of the request: ${reason}`);
      pending = pending.filter((_, i) => !dropped.has(i));
    }
  }

  async reset(): Promise<void> {}

  async close(): Promise<void> {}
}

function parseRefusal(text: string): Refusal | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === "object" && parsed !== null ? (parsed as Refusal) : undefined;
  } catch {
    return undefined;
  }
}
