import assert from "node:assert/strict";
import type { Kafka } from "kafkajs";
import { Piscina } from "piscina";
import type { Registry } from "prom-client";
import { GroupConsumer } from "../../aggregator/consumer.js";
import { KafkaDeadLetters } from "../../aggregator/dead-letters.js";
import { aggregatorMetrics } from "../../aggregator/metrics.js";
import { createLogger } from "../../common/log.js";
import { type PreviousSample, rollupSeries } from "../../aggregator/rollup.js";
import type { Batch } from "../../proto/batch.js";
import { persistedLabelsText } from "../../proto/labels.js";
import type { RollupPartial, Store } from "../../storage/store.js";
import { seriesLabels } from "../../storage/values.js";

export { until } from "./wait.js";

export async function counterTotal(registry: Registry, name: string): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []).reduce((n, v) => n + v.value, 0);
}

/** What the rollups of `batches` must be: each series rolled up over all its points in order, bucket by bucket. */
export function expectedRollups(
  batches: Batch[],
): Map<string, Pick<RollupPartial, "min" | "max" | "sum" | "count" | "last" | "increase">> {
  const out = new Map<string, Pick<RollupPartial, "min" | "max" | "sum" | "count" | "last" | "increase">>();
  const previous = new Map<string, PreviousSample | undefined>();
  for (const batch of [...batches].sort((a, b) => a.sequence - b.sequence)) {
    for (const series of batch.series) {
      const key = persistedLabelsText(seriesLabels(series.name, series.labels));
      const rolled = rollupSeries(series, "1m", previous.get(key));
      previous.set(key, rolled.last);
      for (const p of rolled.partials) {
        const bucketKey = `${key}@${p.bucketStartMs}`;
        const acc = out.get(bucketKey);
        if (!acc)
          out.set(bucketKey, {
            min: p.min,
            max: p.max,
            sum: p.sum,
            count: p.count,
            last: p.last,
            increase: p.increase,
          });
        else
          Object.assign(acc, {
            min: Math.min(acc.min, p.min),
            max: Math.max(acc.max, p.max),
            sum: acc.sum + p.sum,
            count: acc.count + p.count,
            last: p.last,
            increase: acc.increase + p.increase,
          });
      }
    }
  }
  return out;
}

/** The store's 1m rollups over [startMs, endMs) equal those of a clean, in-order run over `batches`. */
export async function assertRollupsMatch(
  store: Store,
  batches: Batch[],
  startMs: number,
  endMs: number,
): Promise<void> {
  const tenant = batches[0]!.tenant;
  const rollups = await store.selectRollups({ tenant, matchers: [], resolution: "1m", startMs, endMs });
  const expected = expectedRollups(batches);
  let buckets = 0;
  for (const series of rollups) {
    for (const bucket of series.buckets) {
      const want = expected.get(`${persistedLabelsText(series.labels)}@${bucket.startMs}`);
      assert.ok(want, `unexpected bucket ${persistedLabelsText(series.labels)} ${bucket.startMs}`);
      assert.equal(bucket.count, want.count);
      assert.equal(bucket.min, want.min);
      assert.equal(bucket.max, want.max);
      assert.equal(bucket.last, want.last);
      assert.ok(Math.abs(bucket.sum - want.sum) <= 1e-6 * Math.abs(want.sum), `sum ${bucket.sum} vs ${want.sum}`);
      assert.ok(
        Math.abs(bucket.increase - want.increase) <= 1e-9 * Math.max(1, want.increase),
        `increase ${bucket.increase} vs ${want.increase}`,
      );
      buckets++;
    }
  }
  assert.equal(buckets, expected.size);
}

export const TEST_LIMITS = {
  max_labels: 30,
  max_label_name_bytes: 1024,
  max_label_value_bytes: 2048,
  max_line_bytes: 65536,
};

/** An in-process aggregator on `topic` (dead letters to `${topic}.dlq`) with its own worker pool, started. */
export async function startTestAggregator(options: {
  kafka: Kafka;
  topic: string;
  groupId: string;
  store: Store;
  registry: Registry;
  maxBatchBytes: number;
  workers: number;
  sessionTimeoutMs?: number;
}) {
  const pool = new Piscina({
    filename: new URL("../../aggregator/worker.js", import.meta.url).href,
    minThreads: options.workers,
    maxThreads: options.workers,
  });
  const deadLetters = new KafkaDeadLetters(options.kafka, `${options.topic}.dlq`);
  const aggregator = new GroupConsumer({
    kafka: options.kafka,
    topic: options.topic,
    deadLetters,
    groupId: options.groupId,
    store: options.store,
    pool,
    maxBatchBytes: options.maxBatchBytes,
    limits: TEST_LIMITS,
    partitionsConcurrently: 3,
    ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
    metrics: aggregatorMetrics(options.registry),
    log: createLogger("silent"),
  });
  await aggregator.start();
  return {
    aggregator,
    stop: async () => {
      await aggregator.stop();
      await deadLetters.close();
      await pool.destroy();
    },
  };
}
