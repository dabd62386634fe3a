"""A stock app instrumented with the OpenTelemetry Python SDK, for test/otlp-sdk.test.ts.

Where and how it exports comes from the OTEL_* environment only, as with the SDK's own configuration: endpoint,
headers, resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), temporality preference
(OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE); OTEL_EXPORTER_OTLP_PROTOCOL picks the gRPC or the HTTP
exporter, as the SDK's configurator does. It measures, exports, measures again and exports again, so that a delta
exporter sends two deltas of each series; then it prints what each export returned and shuts down.
"""

import os
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc") == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
else:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter


class RecordingExporter(OTLPMetricExporter):
    """The stock exporter, remembering each export's result so that the test sees failures."""

    results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        RecordingExporter.results.append(result)
        return result


reader = PeriodicExportingMetricReader(RecordingExporter(), export_interval_millis=3_600_000)
provider = MeterProvider(
    resource=Resource.create(),
    metric_readers=[reader],
    views=[View(instrument_name="payment.duration", aggregation=ExplicitBucketHistogramAggregation([0.5, 1.0]))],
)
meter = provider.get_meter("shop.payments", "2.0.1", schema_url="https://opentelemetry.io/schemas/1.26.0")

payments = meter.create_counter("payments.processed", unit="{payment}", description="Payments processed")
duration = meter.create_histogram("payment.duration", unit="s", description="Time to settle a payment")
queue = meter.create_up_down_counter("payment.queue.items", description="Payments waiting")

payments.add(3, {"payment.method": "card"})
duration.record(0.2)
duration.record(1.5)
queue.add(4)
reader.force_flush()
# The second export's points are a later millisecond than the first's.
time.sleep(0.05)

payments.add(4, {"payment.method": "card"})
duration.record(0.7)
queue.add(-1)
reader.force_flush()

print(",".join("ok" if r == MetricExportResult.SUCCESS else "failed" for r in RecordingExporter.results))
provider.shutdown()
