import { Authenticator } from "../common/auth.js";
import { loadClientTls } from "../common/http-client.js";
import { kafkaClient } from "../common/kafka.js";
import { type Runtime, type Running, startHttpComponent } from "../runtime.js";
import { collectorActions } from "./actions/index.js";
import { InputPipelines } from "./processing/pipeline/processed-batcher.js";
import { Batcher } from "./buffer/batcher.js";
import { startInputs } from "./inputs.js";
import { type LogInputs, startLogInputs } from "./log-inputs.js";
import { collectorMetrics } from "./metrics.js";
import { TenantLimits } from "../common/limits.js";
import { admissionFromConfig, contractFromConfig, ingestDefaultsFromConfig } from "../common/ingest-contract.js";
import type { Transport } from "../common/transport.js";
import { TenantRateLimiter } from "../common/rate-limit.js";
import { lokiReceiver } from "./receivers/loki.js";
import type { OtlpReceiverOptions } from "./receivers/otlp-ingest.js";
import { KafkaTransport } from "./shipper/kafka-transport.js";
import { Shipper } from "./shipper/shipper.js";
import { Wal } from "./buffer/wal.js";

/** What the process that starts the collector may put in place of the configured parts. */
export interface CollectorWiring {
  /**
   * The transport the shipper delivers with instead of the configured one (Kafka, or HTTP to an aggregator):
   * `bifrost all` (all.ts) gives the process's store. `onInvalid` is told of a record the other end can never take.
   */
  transport?: (onInvalid: (reason: string, message: string) => void) => Transport;
}

/**
 * The edge collector: receivers (Loki push and OTLP/HTTP on its HTTP listener, OTLP/gRPC on its own), file
 * tails and host metrics -> batcher -> disk buffer -> shipper, with `/ready` and `/metrics`. The shipper sends
 * to Kafka, or over HTTP to an aggregator, or where `wiring.transport` says.
 */
export async function startCollector(runtime: Runtime, wiring: CollectorWiring = {}): Promise<Running> {
  const { config } = runtime;
  const c = config.collector;
  const log = runtime.log.child({ component: "collector" });
  const metrics = collectorMetrics(runtime.registry);
  const wal = Wal.open({
    dir: c.wal.dir,
    maxBytes: c.wal.max_bytes,
    segmentBytes: c.wal.segment_bytes,
    fsync: c.wal.fsync,
    fsyncIntervalMs: c.wal.fsync_interval_ms,
    whenFull: c.wal.when_full,
    onDrop: (event) => {
      metrics.dropped.inc({ reason: event.reason }, Math.max(0, event.records));
      log.error(
        { ...event },
        event.reason === "disk_budget"
          ? "disk budget full: dropped the oldest undelivered batches"
          : "corrupt records in a disk buffer segment: recovered the valid ones, the undelivered others are lost",
      );
    },
    onTruncated: (event) =>
      log.warn(event, "cut away a record left incomplete at the end of the disk buffer by a crash during its append"),
  });
  const onInvalid = (reason: string, message: string) => {
    metrics.dropped.inc({ reason: "invalid" });
    log.error({ reason, err: message }, "a buffered batch failed to decode or validate; dropped");
  };
  const s = c.shipper;
  // Transports and receivers are imported only when configured: an edge node's memory budget is small, and the
  // OTLP definitions and gRPC alone take about 30 MiB.
  const transport = wiring.transport
    ? wiring.transport(onInvalid)
    : s.transport === "http"
      ? new (await import("./shipper/http-transport.js")).HttpTransport({
          url: s.http.url,
          token: s.http.auth_token,
          tls: loadClientTls(s.http.tls),
          timeoutMs: s.http.timeout_ms,
          maxRequestBytes: s.http.max_request_bytes,
          onInvalid,
        })
      : new KafkaTransport(kafkaClient(config.kafka, log, 2), config.kafka.topic, config.node.id, onInvalid);
  const shipper = new Shipper({
    wal,
    transport,
    log,
    onShipped: (n) => metrics.shipped.inc(n),
    onRetry: () => metrics.retries.inc(),
  });
  // One instance for the contract and the batcher, which then default each stream once (IngestDefaults.apply).
  const ingestDefaults = ingestDefaultsFromConfig(config, "shipped");
  const batcher = new Batcher({
    node: config.node,
    nodeLabels: c.node_labels,
    wal,
    ingestDefaults,
    maxEntries: c.batch.max_entries,
    maxBytes: c.batch.max_bytes,
    maxAgeMs: c.batch.max_age_ms,
    maxBatchBytes: c.batch.max_batch_bytes,
    maxTrackedSeries: c.batch.max_tracked_series,
    onWritten: () => {
      metrics.batches.inc();
      shipper.notify();
    },
  });
  batcher.restorePrevious(wal.tail(1000));
  const tenantLimits = new TenantLimits(config);
  const rate = new TenantRateLimiter(tenantLimits);
  // One contract and one budget for every receiver: what they acknowledge, and how much they decode at once.
  const contract = contractFromConfig(config, tenantLimits, "shipped", ingestDefaults);
  const pipelines = new InputPipelines({
    batcher,
    contract,
    registry: runtime.registry,
    log: log.child({ component: "pipeline" }),
    defaults: c.pipeline_stages,
  });
  const pushBatcher = pipelines.batcherFor("push", c.push_pipeline_stages);
  const admission = admissionFromConfig(c.limits, (held, waiting) => {
    metrics.inflightBytes.set(held);
    metrics.inflightWaiting.set(waiting);
  });
  const actions = collectorActions(runtime, batcher, wal.incarnation);
  const onRejected = (reason: string) => metrics.rejected.inc({ reason });
  const otlpHttp = c.otlp.http_enabled ? await import("./receivers/otlp-http.js") : undefined;
  const remoteWrite = c.remote_write.enabled ? await import("./receivers/remote-write.js") : undefined;
  const scrape =
    c.scrape.scrape_configs.length > 0
      ? new (await import("./receivers/scrape.js")).ScrapeManager({
          config: c.scrape,
          defaultTenant: c.default_tenant,
          limits: c.limits,
          tenantLimits,
          batcher,
          contract,
          registry: runtime.registry,
          log: log.child({ input: "scrape" }),
        })
      : undefined;
  const otlpMetrics =
    c.otlp.http_enabled || c.otlp.grpc_enabled
      ? (await import("./receivers/otlp-metrics.js")).otlpMetricsOptions(c.otlp)
      : undefined;
  const otlp: OtlpReceiverOptions | undefined = otlpMetrics && {
    batcher: pushBatcher,
    contract,
    admission,
    rate,
    metrics: otlpMetrics,
    onAccepted: (signal, tenant, count) =>
      (signal === "logs" ? metrics.accepted : metrics.samples).inc({ tenant }, count),
    onRejected,
  };
  const running = await startHttpComponent(runtime, "collector", (http) => {
    actions?.route(http.app);
    lokiReceiver(http.app, {
      batcher: pushBatcher,
      contract,
      admission,
      maxBodyBytes: c.limits.max_body_bytes,
      rate,
      onAccepted: (tenant, entries) => metrics.accepted.inc({ tenant }, entries),
      onRejected,
    });
    if (otlpHttp && otlp) otlpHttp.otlpHttpRoutes(http.app, { ...otlp, maxBodyBytes: c.limits.max_body_bytes });
    scrape?.route(http.app);
    remoteWrite?.remoteWriteRoute(http.app, {
      batcher,
      contract,
      admission,
      limits: c.limits,
      tenantLimits,
      rate,
      maxBodyBytes: c.limits.max_body_bytes,
      onAccepted: (tenant, samples) => metrics.samples.inc({ tenant }, samples),
      onRejected: (reason, samples) => {
        metrics.rejected.inc({ reason });
        if (samples > 0) metrics.samplesRejected.inc({ reason }, samples);
      },
    });
    // Kafka (or the aggregator) away is what the disk buffer is for: the collector keeps accepting.
    http.addNote("shipper", () => shipper.status());
    http.addReadiness("disk buffer", () =>
      wal.bytes() + (c.batch.max_bytes + 4096) > c.wal.max_bytes && c.wal.when_full === "block"
        ? "disk buffer full"
        : null,
    );
  });
  let grpc;
  let logInputs: LogInputs;
  try {
    grpc =
      c.otlp.grpc_enabled && otlp
        ? await (
            await import("./receivers/otlp-grpc.js")
          ).startOtlpGrpc({
            ...otlp,
            authenticator: new Authenticator(config.auth, c.default_tenant),
            listen: c.otlp.grpc_listen,
            maxMessageBytes: c.otlp.max_grpc_message_bytes,
          })
        : undefined;
    logInputs = await startLogInputs({
      config: c,
      batcher,
      pipelines,
      registry: runtime.registry,
      log,
      tenantLimits,
      contract,
      rate,
      onAccepted: (tenant, entries) => metrics.accepted.inc({ tenant }, entries),
    });
  } catch (err) {
    await Promise.all([running.stop(), grpc?.stop()]);
    throw err;
  }
  const gauges = setInterval(() => {
    metrics.buffered.set(wal.bytes());
    metrics.lag.set(wal.pending());
  }, 1000);
  gauges.unref();
  const inputs = startInputs({
    config: c,
    batcher,
    pipelines,
    contract,
    registry: runtime.registry,
    log,
    ownLogs: runtime.ownLogs,
  });
  shipper.start();
  scrape?.start();
  actions?.start(running.address.url);
  return {
    ...running,
    ...(grpc ? { otlpGrpc: grpc.address } : {}),
    stop: async () => {
      clearInterval(gauges);
      await Promise.all([running.stop(), grpc?.stop()]);
      actions?.stop();
      await scrape?.stop();
      await Promise.all([inputs.stop(), logInputs.stop()]);
      pipelines.stop();
      batcher.flush();
      await shipper.stop();
      wal.close();
    },
  };
}
