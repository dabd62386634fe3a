import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** Client side of TLS towards a Bifrost listener: the CA to trust, and a certificate for mutual TLS. */
export interface ClientTlsFiles {
  ca_file?: string | undefined;
  cert_file?: string | undefined;
  key_file?: string | undefined;
}

export interface ClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the files once, at start, so that a missing file fails the start rather than every request. */
export function loadClientTls(files: ClientTlsFiles): ClientTls {
  const tls: ClientTls = {};
  if (files.ca_file !== undefined) tls.ca = readFileSync(files.ca_file);
  if (files.cert_file !== undefined) tls.cert = readFileSync(files.cert_file);
  if (files.key_file !== undefined) tls.key = readFileSync(files.key_file);
  return tls;
}

export interface PostResult {
  status: number;
  retryAfter: string | undefined;
  text: string;
  /** The answer's bytes, as they came (text is their UTF-8 reading). */
  body: Buffer;
  contentType: string | undefined;
}

/** POSTs a JSON body; see post(). */
export function postJson(
  url: string,
  body: string,
  options: { headers?: Record<string, string>; timeoutMs: number; tls?: ClientTls },
): Promise<PostResult> {
  return post(url, body, { ...options, headers: { "Content-Type": "application/json", ...options.headers } });
}

/**
 * POSTs a body over http or https as the URL says (fetch cannot present a client certificate, which a
 * listener with mutual TLS requires), and resolves with the answer's status and text.
 */
export function post(
  url: string,
  body: string | Uint8Array,
  options: { headers?: Record<string, string>; timeoutMs: number; tls?: ClientTls; maxResponseBytes?: number },
): Promise<PostResult> {
  const target = new URL(url);
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: "POST",
        headers: { "Content-Length": Buffer.byteLength(body), ...options.headers },
        signal: AbortSignal.timeout(options.timeoutMs),
        ...(target.protocol === "https:" ? options.tls : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let received = 0;
        res.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (options.maxResponseBytes !== undefined && received > options.maxResponseBytes)
            req.destroy(new Error(`the answer is over ${options.maxResponseBytes} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          const retryAfter = res.headers["retry-after"];
          const bytes = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
            text: bytes.toString("utf8"),
            body: bytes,
            contentType: res.headers["content-type"],
          });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Retry-After, in seconds or as an HTTP date, as milliseconds to wait; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
