import { readFileSync } from "node:fs";
import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { createGunzip } from "node:zlib";
import { VERSION } from "../../common/version.js";
import type { ScrapeJobConfig } from "./scrape-config.js";

// The HTTP side of a scrape, as Prometheus's targetScraper does it: GET with Prometheus's Accept header (OpenMetrics
// first, then text 0.0.4), gzip accepted, X-Prometheus-Scrape-Timeout-Seconds, the job's authentication and TLS,
// redirects followed, the whole exchange within the scrape timeout and the uncompressed body within
// body_size_limit. Connections are kept alive between scrapes, one pool per job.

const ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const MAX_REDIRECTS = 10;

/** A scrape that failed before there was an exposition to read; the message is the target's lastError. */
export class ScrapeHttpError extends Error {
  override readonly name = "ScrapeHttpError";
}

export interface ScrapedBody {
  bytes: Buffer;
  contentType: string | undefined;
}

/** A job's client: its connection pools and how it authenticates. */
export class ScrapeClient {
  private readonly http = new HttpAgent({ keepAlive: true });
  private readonly https: HttpsAgent;

  constructor(
    private readonly job: ScrapeJobConfig,
    private readonly maxBodyBytes: number,
  ) {
    const tls = job.tls_config;
    this.https = new HttpsAgent({
      keepAlive: true,
      ...(tls.ca_file !== undefined ? { ca: readFileSync(tls.ca_file) } : {}),
      ...(tls.cert_file !== undefined ? { cert: readFileSync(tls.cert_file) } : {}),
      ...(tls.key_file !== undefined ? { key: readFileSync(tls.key_file) } : {}),
      ...(tls.server_name !== undefined ? { servername: tls.server_name } : {}),
      rejectUnauthorized: !tls.insecure_skip_verify,
    });
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  /** The Authorization header, files read at each scrape so that rotated secrets are picked up. */
  private authorization(): string | undefined {
    const { basic_auth: basic, authorization, bearer_token: token, bearer_token_file: tokenFile } = this.job;
    if (basic !== undefined) {
      const password =
        basic.password_file !== undefined ? readFileSync(basic.password_file, "utf8").trim() : (basic.password ?? "");
      return `Basic ${Buffer.from(`${basic.username}:${password}`).toString("base64")}`;
    }
    const credentials =
      authorization?.credentials_file !== undefined
        ? readFileSync(authorization.credentials_file, "utf8").trim()
        : tokenFile !== undefined
          ? readFileSync(tokenFile, "utf8").trim()
          : (authorization?.credentials ?? token);
    if (credentials === undefined) return undefined;
    return `${authorization?.type ?? "Bearer"} ${credentials}`;
  }

  /** GETs the target's metrics within `timeoutMs`; rejects with ScrapeHttpError. */
  async scrape(url: string, timeoutMs: number): Promise<ScrapedBody> {
    const signal = AbortSignal.timeout(timeoutMs);
    let authorization: string | undefined;
    try {
      authorization = this.authorization();
    } catch (err) {
      throw new ScrapeHttpError(`unable to read authorization credentials: ${(err as Error).message}`);
    }
    const headers: Record<string, string> = {
      Accept: ACCEPT,
      "Accept-Encoding": "gzip",
      "User-Agent": `Bifrost/${VERSION}`,
      "X-Prometheus-Scrape-Timeout-Seconds": String(timeoutMs / 1000),
      ...(authorization !== undefined ? { Authorization: authorization } : {}),
    };
    let target = new URL(url);
    for (let hops = 0; ; hops++) {
      const response = await this.get(target, headers, signal, url);
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
        response.resume();
        if (hops >= MAX_REDIRECTS) throw new ScrapeHttpError(`Get ${JSON.stringify(url)}: stopped after 10 redirects`);
        target = new URL(location, target);
        continue;
      }
      if (status !== 200) {
        response.resume();
        throw new ScrapeHttpError(`server returned HTTP status ${status} ${response.statusMessage ?? ""}`.trim());
      }
      return { bytes: await this.read(response, signal, url), contentType: response.headers["content-type"] };
    }
  }

  private get(
    target: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
    url: string,
  ): Promise<IncomingMessage> {
    const https = target.protocol === "https:";
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        target,
        { method: "GET", headers, signal, agent: https ? this.https : this.http },
        resolve,
      );
      req.on("error", (err) => reject(this.failure(err, signal, url)));
      req.end();
    });
  }

  private failure(err: Error, signal: AbortSignal, url: string): ScrapeHttpError {
    return new ScrapeHttpError(
      `Get ${JSON.stringify(url)}: ${signal.aborted ? "context deadline exceeded" : err.message}`,
    );
  }

  private read(response: IncomingMessage, signal: AbortSignal, url: string): Promise<Buffer> {
    const gzip = response.headers["content-encoding"] === "gzip";
    const stream = gzip ? response.pipe(createGunzip()) : response;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const fail = (err: Error) => {
        response.destroy();
        stream.destroy();
        reject(err);
      };
      stream.on("data", (chunk: Buffer) => {
        total += chunk.length;
        if (this.maxBodyBytes > 0 && total >= this.maxBodyBytes) fail(new ScrapeHttpError("body size limit exceeded"));
        else chunks.push(chunk);
      });
      stream.on("end", () => resolve(Buffer.concat(chunks)));
      stream.on("error", (err) =>
        fail(gzip && !signal.aborted ? new ScrapeHttpError(`gzip: ${err.message}`) : this.failure(err, signal, url)),
      );
      if (gzip) response.on("error", (err) => fail(this.failure(err, signal, url)));
    });
  }
}
