import * as grpc from "@grpc/grpc-js";
import { OverloadedError } from "../../common/admission.js";
import type { Authenticator } from "../../common/auth.js";
import type { ListeningAddress } from "../../common/service.js";
import { ingestOtlp, type OtlpReceiverOptions } from "./otlp-ingest.js";
import { traceService } from "./otlp-traces.js";
import { encodeResponse, encodeStatus, exportResponse, type Signal } from "./otlp-proto.js";

// OTLP/gRPC (https://opentelemetry.io/docs/specs/otlp/#otlpgrpc): LogsService/Export and MetricsService/Export.
// Requests arrive as bytes and are decoded here, so that malformed protobuf is INVALID_ARGUMENT rather than the
// INTERNAL grpc-js gives a failing deserializer. Over the rate: RESOURCE_EXHAUSTED; disk buffer full or receivers
// busy: UNAVAILABLE; both with a google.rpc.RetryInfo in grpc-status-details-bin, which the spec makes the sign
// that a retry helps. Outside the ingestion contract (too large once converted included): INVALID_ARGUMENT.
// Messages over max_grpc_message_bytes get grpc-js's RESOURCE_EXHAUSTED before they are read.

export interface OtlpGrpcOptions extends OtlpReceiverOptions {
  /** gRPC has no HTTP middleware: credentials and tenant come from the `authorization` and `x-scope-orgid` metadata. */
  authenticator: Authenticator;
  listen: string;
  maxMessageBytes: number;
}

export interface OtlpGrpcServer {
  address: ListeningAddress;
  stop(): Promise<void>;
}

const SERVICES: Record<Signal, string> = {
  logs: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
  metrics: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
};

const bytes = (value: Buffer) => value;

function definition(signal: Signal): grpc.ServiceDefinition {
  return {
    Export: {
      path: SERVICES[signal],
      requestStream: false,
      responseStream: false,
      requestSerialize: bytes,
      requestDeserialize: bytes,
      responseSerialize: bytes,
      responseDeserialize: bytes,
      originalName: "export",
    },
  };
}

function failure(code: grpc.status, message: string, retryAfterS?: number): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (retryAfterS !== undefined)
    metadata.set("grpc-status-details-bin", Buffer.from(encodeStatus(code, message, retryAfterS)));
  return { code, details: message, metadata };
}

function handler(signal: Signal, options: OtlpGrpcOptions): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    const header = (name: string) => call.metadata.get(name)[0]?.toString();
    const identity = options.authenticator.resolve(header("authorization"), header("x-scope-orgid"));
    if ("status" in identity) {
      options.onRejected?.(identity.status === 400 ? "bad_tenant" : "unauthenticated");
      const code =
        identity.status === 400
          ? grpc.status.INVALID_ARGUMENT
          : identity.status === 401
            ? grpc.status.UNAUTHENTICATED
            : grpc.status.PERMISSION_DENIED;
      return callback(failure(code, identity.reason));
    }
    const ingest = async () => {
      const ticket = await options.admission.enter(call.request.length);
      try {
        return await ingestOtlp(options, signal, identity.tenant, { protobuf: call.request });
      } finally {
        ticket.release();
      }
    };
    ingest().then(
      (outcome) => {
        switch (outcome.kind) {
          case "invalid":
          case "too_large":
            return callback(failure(grpc.status.INVALID_ARGUMENT, outcome.message));
          case "rate_limited":
            return callback(failure(grpc.status.RESOURCE_EXHAUSTED, outcome.message, outcome.retryAfterS));
          case "unavailable":
            return callback(failure(grpc.status.UNAVAILABLE, outcome.message, outcome.retryAfterS));
          case "accepted":
            return callback(
              null,
              Buffer.from(encodeResponse(signal, exportResponse(signal, outcome.rejected, outcome.message))),
            );
        }
      },
      (err: Error) => {
        if (!(err instanceof OverloadedError)) return callback(failure(grpc.status.INTERNAL, err.message));
        options.onRejected?.("overloaded");
        callback(failure(grpc.status.UNAVAILABLE, err.message, err.retryAfterS));
      },
    );
  };
}

export async function startOtlpGrpc(options: OtlpGrpcOptions): Promise<OtlpGrpcServer> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": options.maxMessageBytes });
  for (const signal of ["logs", "metrics"] as const)
    server.addService(definition(signal), { Export: handler(signal, options) });
  const traces = traceService(options);
  server.addService(traces.definition, traces.handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.listen, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  const host = options.listen.slice(0, options.listen.lastIndexOf(":"));
  return {
    address: { host, port, url: `${host}:${port}` },
    stop: () =>
      new Promise<void>((resolve) => {
        // Calls in flight finish; a client that holds its connection open past them does not hold up the stop.
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
