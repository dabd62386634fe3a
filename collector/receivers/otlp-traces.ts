import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import type { Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { mediaType } from "../../common/http-body.js";
import { gunzipSync } from "node:zlib";

// OTLP traces: Bifrost stores logs and metrics, not traces. An SDK set up with the defaults exports traces to
// the same endpoint as its logs and metrics, and a 404 or UNIMPLEMENTED there is an export error at every
// flush and at shutdown. The collector answers instead with what OTLP has for data it will not keep: a
// successful Export response whose partial_success rejects every span and says why (the SDKs log it as a
// warning and do not retry), while the spans are counted in /metrics. It does not forward them: a second
// delivery path with its own disk budget and retries for a signal Bifrost cannot query would be a pipeline of
// its own; an OpenTelemetry Collector in front of a trace store does that. Set OTEL_TRACES_EXPORTER=none in
// the applications to stop sending them.

interface MessageType {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: object): object;
  toObject(message: object, options: object): Record<string, unknown>;
}

const trace = (
  createRequire(import.meta.url)("otlp-transformer-protobufjs/build/src/generated/root.js") as {
    opentelemetry: {
      proto: {
        collector: {
          trace: { v1: { ExportTraceServiceRequest: MessageType; ExportTraceServiceResponse: MessageType } };
        };
      };
    };
  }
).opentelemetry.proto.collector.trace.v1;

const PROTOBUF = "application/x-protobuf";
const JSON_TYPE = "application/json";

export const TRACES_NOT_STORED =
  "Bifrost stores logs and metrics, not traces: these spans were not stored; set OTEL_TRACES_EXPORTER=none in the application";

interface Spans {
  resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[];
}

function countSpans(request: Spans): number {
  let spans = 0;
  for (const resource of request.resourceSpans ?? [])
    for (const scope of resource.scopeSpans ?? []) spans += scope.spans?.length ?? 0;
  return spans;
}

/** The spans of a protobuf request; throws on bytes that are not one. */
export function spansInProtobuf(bytes: Uint8Array): number {
  const type = trace.ExportTraceServiceRequest;
  return countSpans(type.toObject(type.decode(bytes), { longs: String }) as Spans);
}

function response(spans: number): object {
  return trace.ExportTraceServiceResponse.fromObject({
    partialSuccess: { rejectedSpans: spans, errorMessage: TRACES_NOT_STORED },
  });
}

export interface TracesOptions {
  maxBodyBytes: number;
  /** Spans answered as not stored. */
  onSpans?: (spans: number) => void;
  onRejected?: (reason: string) => void;
}

/** POST /v1/traces: 200 with partial_success rejecting every span; 400 for a body that is not a traces request. */
export function otlpTracesRoute(app: Hono, options: TracesOptions): void {
  const isJson = (c: Context) => mediaType(c) === JSON_TYPE;
  app.post(
    "/v1/traces",
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => {
        options.onRejected?.("body_too_large");
        return c.json({ code: 3, message: `request body larger than ${options.maxBodyBytes} bytes` }, 413);
      },
    }),
    async (c) => {
      const json = isJson(c);
      let spans: number;
      try {
        let raw = Buffer.from(await c.req.arrayBuffer());
        const encoding = (c.req.header("Content-Encoding") ?? "").trim().toLowerCase();
        if (encoding === "gzip") raw = gunzipSync(raw, { maxOutputLength: options.maxBodyBytes * 10 });
        else if (encoding !== "" && encoding !== "identity")
          throw new Error(`unsupported Content-Encoding ${encoding}`);
        if (json) {
          const body = JSON.parse(raw.toString("utf8")) as Spans;
          if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
          spans = countSpans(body);
        } else spans = spansInProtobuf(raw);
      } catch (err) {
        options.onRejected?.("bad_request");
        return c.json({ code: 3, message: `the body is not an OTLP traces request: ${(err as Error).message}` }, 400);
      }
      options.onSpans?.(spans);
      options.onRejected?.("traces_not_stored");
      const answer = response(spans);
      if (json) return c.json(trace.ExportTraceServiceResponse.toObject(answer, { longs: String }), 200);
      return c.body(Buffer.from(trace.ExportTraceServiceResponse.encode(answer).finish()), 200, {
        "Content-Type": PROTOBUF,
      });
    },
  );
}

/** opentelemetry.proto.collector.trace.v1.TraceService/Export with the same answer, for the gRPC listener. */
export function traceService(options: Pick<TracesOptions, "onSpans" | "onRejected">): {
  definition: grpc.ServiceDefinition;
  handlers: grpc.UntypedServiceImplementation;
} {
  const bytes = (value: Buffer) => value;
  return {
    definition: {
      Export: {
        path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        requestStream: false,
        responseStream: false,
        requestSerialize: bytes,
        requestDeserialize: bytes,
        responseSerialize: bytes,
        responseDeserialize: bytes,
        originalName: "export",
      },
    },
    handlers: {
      Export: ((call, callback) => {
        let spans: number;
        try {
          spans = spansInProtobuf(call.request);
        } catch (err) {
          options.onRejected?.("bad_request");
          return callback({
            code: grpc.status.INVALID_ARGUMENT,
            details: `not an OTLP traces request: ${(err as Error).message}`,
          });
        }
        options.onSpans?.(spans);
        options.onRejected?.("traces_not_stored");
        callback(null, Buffer.from(trace.ExportTraceServiceResponse.encode(response(spans)).finish()));
      }) as grpc.handleUnaryCall<Buffer, Buffer>,
    },
  };
}
