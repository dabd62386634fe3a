import type { Kafka, Producer } from "kafkajs";
import type { BatchRecord, Transport } from "../../common/transport.js";

/**
 * Kafka with acks=all through an idempotent producer with one request in flight, keyed by node id, so one
 * node's batches stay in one partition, in order.
 */
export class KafkaTransport implements Transport {
  private producer: Producer | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly key: string,
  ) {}

  async send(records: BatchRecord[]): Promise<void> {
    if (this.producer === undefined) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 3, initialRetryTime: 200 },
      });
      await producer.connect();
      this.producer = producer;
    }
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: records.map((r) => ({
        key: this.key,
        value: r.payload,
        headers: { "bifrost-sequence": String(r.sequence) },
      })),
    });
  }

  async reset(): Promise<void> {
    // A broker that restarted may have forgotten this producer's id; start over with a new one.
    const stale = this.producer;
    this.producer = undefined;
    await stale?.disconnect().catch(() => {});
  }

  close(): Promise<void> {
    return this.reset();
  }
}
