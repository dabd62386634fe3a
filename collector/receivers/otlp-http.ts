import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { OverloadedError, type Ticket } from "../../common/admission.js";
import { tenantOf } from "../../common/auth.js";
import { BodyError, declaredLength, decompressBody, mediaType } from "../../common/http-body.js";
import { ingestOtlp, type OtlpBody, type OtlpReceiverOptions, type Outcome } from "./otlp-ingest.js";
import { otlpTracesRoute } from "./otlp-traces.js";
import { encodeResponse, encodeStatus, exportResponse, responseJson, type Signal } from "./otlp-proto.js";

// OTLP/HTTP (https://opentelemetry.io/docs/specs/otlp/#otlphttp): POST /v1/logs and /v1/metrics with
// application/x-protobuf or application/json, optionally gzip-compressed. 200 with the Export*ServiceResponse
// (partial_success when some data points have no Prometheus form); errors carry a google.rpc.Status in the
// request's encoding: 400 malformed or outside the ingestion contract, 413 over the body size (as sent,
// decompressed or converted), 415 for another content type or encoding, 429 over the tenant's rate and 503 while
// the disk buffer is full or the receivers are busy, both with Retry-After.

const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;

const PROTOBUF = "application/x-protobuf";
const JSON_TYPE = "application/json";

export interface OtlpHttpOptions extends OtlpReceiverOptions {
  /** The largest body, compressed or not. */
  maxBodyBytes: number;
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

async function readBody(c: Context, json: boolean, options: OtlpHttpOptions, ticket: Ticket): Promise<OtlpBody> {
  const raw = Buffer.from(await c.req.arrayBuffer());
  await ticket.resize(raw.length);
  const bytes = await decompressBody(raw, c.req.header("Content-Encoding") ?? "", {
    maxBytes: options.contract.maxDecompressedBytes,
    ticket,
    encodings: ["gzip"],
  });
  if (!json) return { protobuf: bytes };
  try {
    return { json: JSON.parse(bytes.toString("utf8")) };
  } catch (err) {
    throw new BodyError(400, "bad_request", `the body is not JSON: ${(err as Error).message}`);
  }
}

function route(app: Hono, signal: Signal, options: OtlpHttpOptions): void {
  const reject = (reason: string) => options.onRejected?.(reason);
  const isJson = (c: Context) => mediaType(c) === JSON_TYPE;
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
      const type = mediaType(c);
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
      let ticket: Ticket | undefined;
      try {
        ticket = await options.admission.enter(declaredLength(c, options.maxBodyBytes));
        const outcome = await ingestOtlp(options, signal, tenantOf(c), await readBody(c, json, options, ticket));
        return answer(c, json, signal, outcome);
      } catch (err) {
        if (err instanceof BodyError) {
          reject(err.reason);
          return errorResponse(c, json, err.status, INVALID_ARGUMENT, err.message);
        }
        if (err instanceof OverloadedError) {
          reject("overloaded");
          return errorResponse(c, json, 503, UNAVAILABLE, err.message, err.retryAfterS);
        }
        throw err;
      } finally {
        ticket?.release();
      }
    },
  );
}

function answer(c: Context, json: boolean, signal: Signal, outcome: Outcome): Response {
  switch (outcome.kind) {
    case "invalid":
      return errorResponse(c, json, 400, INVALID_ARGUMENT, outcome.message);
    case "too_large":
      return errorResponse(c, json, 413, INVALID_ARGUMENT, outcome.message);
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
}

/** OTLP/HTTP logs and metrics on the collector's HTTP listener, and traces answered as not stored. */
export function otlpHttpRoutes(app: Hono, options: OtlpHttpOptions): void {
  route(app, "logs", options);
  route(app, "metrics", options);
  otlpTracesRoute(app, options);
}
