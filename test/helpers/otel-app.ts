import { context, metrics, trace, TraceFlags } from "@opentelemetry/api";
import { logs, SeverityNumber } from "@opentelemetry/api-logs";
import { NodeSDK } from "@opentelemetry/sdk-node";

// A stock instrumented app for test/otlp.test.ts: NodeSDK as its README sets it up, with where and how it
// exports (endpoint, protocol, headers, resource, temporality) taken from the OTEL_* environment only. It emits
// two log records and one measurement of each instrument kind, then shuts down, which exports everything once
// (with OTEL_APP_EXPORTS=2 it exports before more measurements too).

const TRACE_ID = "5b8efff798038103d269b633813fc60c";
const SPAN_ID = "eee19b7ec3c1b174";

async function main(): Promise<void> {
  const sdk = new NodeSDK();
  sdk.start();
  const logger = logs.getLogger("checkout", "1.2.3");
  const inSpan = trace.setSpanContext(context.active(), {
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    traceFlags: TraceFlags.SAMPLED,
  });
  logger.emit({
    timestamp: [1764000000, 123000000],
    observedTimestamp: [1764000000, 200000000],
    severityNumber: SeverityNumber.INFO,
    severityText: "INFO",
    body: "payment accepted",
    attributes: { "order.id": "o-17", amount: 12.5 },
    context: inSpan,
  });
  logger.emit({
    timestamp: [1764000001, 0],
    severityNumber: SeverityNumber.WARN,
    body: { event: "refund", cents: 250 },
  });

  const meter = metrics.getMeter("checkout", "1.2.3");
  const orders = meter.createCounter("orders.placed", { unit: "{order}", description: "Orders placed" });
  orders.add(3, { "payment.method": "card" });
  const duration = meter.createHistogram("checkout.duration", {
    unit: "ms",
    description: "Time from cart to payment",
    advice: { explicitBucketBoundaries: [10, 100] },
  });
  duration.record(7);
  duration.record(120);
  const open = meter.createUpDownCounter("carts.open", { description: "Carts not checked out" });
  open.add(5);
  open.add(-2);
  meter.createGauge("queue.depth").record(4, { queue: "payments" });

  // With OTEL_APP_EXPORTS=2, an export now and more measurements for the one at shutdown: a delta exporter
  // sends two deltas of each counter and histogram.
  if (process.env.OTEL_APP_EXPORTS === "2") {
    await (metrics.getMeterProvider() as unknown as { forceFlush(): Promise<void> }).forceFlush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    orders.add(2, { "payment.method": "card" });
    duration.record(50);
  }
  await sdk.shutdown();
}

await main();
