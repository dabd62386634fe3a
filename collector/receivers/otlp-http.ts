import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { tenantOf } from "../../common/auth.js";
import { ingestOtlp, type OtlpBody, type OtlpReceiverOptions } from "./otlp-ingest.js";
import { otlpTracesRoute } from "./otlp-traces.js";
import { encodeResponse, encodeStatus, exportResponse, responseJson, type Signal } from "./otlp-proto.js";

// OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/logs and /v1/metrics with
// application/x-protobuf or application/json, optionally gzip-compressed. 200 with the Export*ServiceResponse
// (partial_success when some data points have no Prometheus form); errors carry a google.rpc.Status in the
// request's encoding: 400 malformed or over a limit, 413 over the body size, 415 for another content type or
// encoding, 429 over the tenant's rate and 503 while the disk buffer is full, both with Retry-After.

const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

const PROTOBUF = "application/x-protobuf";
const JSON_TYPE = "application/json";

export interface OtlpHttpOptions extends OtlpReceiverOptions {
  /** The largest body, compressed or not. */
  maxBodyBytes: number;
}

class HttpError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

function errorResponse(
  c: Context,
  json: boolean,
  status: 400 | 413 | 415 | 429 | 503,
  code: number,
  message: string,
  retryAfterS?: number,
): Response {
  const headers: Record<string, string> = retryAfterS === undefined ? {} : { "Retry-After": String(retryAfterS) };
  if (json) return c.json({ code, message }, status, headers);
  return c.body(Buffer.from(encodeStatus(code, message, retryAfterS)), status, {
    ...headers,
    "Content-Type": PROTOBUF,
  });
}

async function decompress(raw: Buffer, encoding: string, maxBytes: number): Promise<Buffer> {
  if (encoding === "" || encoding === "identity") return raw;
  if (encoding !== "gzip")
    throw new HttpError(415, `unsupported Content-Encoding ${encoding}; use gzip or none`, "unsupported_encoding");
  try {
    return await promisify(gunzip)(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
      throw new HttpError(413, `the decompressed body is larger than ${maxBytes} bytes`, "body_too_large");
    throw new HttpError(400, `the body is not valid gzip: ${(err as Error).message}`, "bad_request");
  }
}

async function readBody(c: Context, json: boolean, maxBytes: number): Promise<OtlpBody> {
  const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
  const bytes = await decompress(Buffer.from(await c.req.arrayBuffer()), encoding, maxBytes);
  if (!json) return { protobuf: bytes };
  try {
    return { json: JSON.parse(bytes.toString("utf8")) };
  } catch (err) {
    throw new HttpError(400, `the body is not JSON: ${(err as Error).message}`, "bad_request");
  }
}

function route(app: Hono, signal: Signal, options: OtlpHttpOptions): void {
  const reject = (reason: string) => options.onRejected?.(reason);
  const isJson = (c: Context) => (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase() === JSON_TYPE;
  app.post(
    `/v1/${signal}`,
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => {
        reject("body_too_large");
        return errorResponse(
          c,
          isJson(c),
          413,
          INVALID_ARGUMENT,
          `request body larger than ${options.maxBodyBytes} bytes`,
        );
      },
    }),
    async (c) => {
      const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
      const json = type === JSON_TYPE;
      if (!json && type !== PROTOBUF) {
        reject("unsupported_media_type");
        return errorResponse(
          c,
          false,
          415,
          INVALID_ARGUMENT,
          `unsupported Content-Type ${JSON.stringify(type)}; use ${PROTOBUF} or ${JSON_TYPE}`,
        );
      }
      let body: OtlpBody;
      try {
        body = await readBody(c, json, options.maxBodyBytes);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        reject(err.reason);
        return errorResponse(c, json, err.status, INVALID_ARGUMENT, err.message);
      }
      const outcome = await ingestOtlp(options, signal, tenantOf(c), body);
      switch (outcome.kind) {
        case "invalid":
          return errorResponse(c, json, 400, INVALID_ARGUMENT, outcome.message);
        case "rate_limited":
          return errorResponse(c, json, 429, RESOURCE_EXHAUSTED, outcome.message, outcome.retryAfterS);
        case "unavailable":
          return errorResponse(c, json, 503, UNAVAILABLE, outcome.message, outcome.retryAfterS);
        case "accepted": {
          const response = exportResponse(signal, outcome.rejected, outcome.message);
          if (json) return c.json(responseJson(signal, response), 200);
          return c.body(Buffer.from(encodeResponse(signal, response)), 200, { "Content-Type": PROTOBUF });
        }
      }
    },
  );
}

/** OTLP/HTTP logs and metrics on the collector's HTTP listener, and traces answered as not stored. */
export function otlpHttpRoutes(app: Hono, options: OtlpHttpOptions): void {
  route(app, "logs", options);
  route(app, "metrics", options);
  otlpTracesRoute(app, options);
}
