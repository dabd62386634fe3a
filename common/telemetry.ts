import type { TelemetryConfig } from "./config-sections.js";
import type { Logger } from "./log.js";

export interface Telemetry {
  shutdown(): Promise<void>;
}

/**
 * Bifrost's own traces and metrics over OTLP/gRPC, only when an endpoint is configured. The SDK is loaded
 * lazily: it is large, and an edge node that does not export should not pay for it at start-up.
 */
export async function startTelemetry(config: TelemetryConfig, role: string, log: Logger): Promise<Telemetry> {
  if (config.otlp_endpoint === "") return { shutdown: async () => {} };
  const [
    { NodeSDK },
    { OTLPTraceExporter },
    { OTLPMetricExporter },
    { PeriodicExportingMetricReader },
    { resourceFromAttributes },
  ] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/exporter-trace-otlp-grpc"),
    import("@opentelemetry/exporter-metrics-otlp-grpc"),
    import("@opentelemetry/sdk-metrics"),
    import("@opentelemetry/resources"),
  ]);
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({ "service.name": config.service_name, "bifrost.role": role }),
    traceExporter: new OTLPTraceExporter({ url: config.otlp_endpoint }),
    metricReaders: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: config.otlp_endpoint }),
        exportIntervalMillis: config.export_interval_ms,
      }),
    ],
  });
  sdk.start();
  log.info({ endpoint: config.otlp_endpoint }, "self-telemetry exporting over OTLP/gRPC");
  return { shutdown: () => sdk.shutdown() };
}
