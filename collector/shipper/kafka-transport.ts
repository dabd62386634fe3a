import kafkajs, { type Kafka, type Producer } from "kafkajs";
import type { BatchRecord, Transport } from "../../common/transport.js";
import { fitMessages } from "./message-size.js";

// kafkajs is CommonJS: its enums are properties of the default export, not named exports.
const { ConfigResourceTypes } = kafkajs;

/** Kafka's default max.message.bytes, for a topic whose configuration cannot be read. */
const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/**
 * Kafka with acks=all through an idempotent producer with one request in flight, keyed by node id, so one
 * node's batches stay in one partition, in order. Each produce request fits the topic's max.message.bytes
 * (./message-size.ts), read when the producer connects.
 */
export class KafkaTransport implements Transport {
  private producer: Producer | undefined;
  private maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly key: string,
    /** A record with a row larger than the topic takes as a message: no retry can deliver it, so it is dropped. */
    private readonly onInvalid: (reason: string, message: string) => void,
  ) {}

  async send(records: BatchRecord[]): Promise<void> {
    if (this.producer === undefined) {
      this.maxMessageBytes = await this.topicMaxMessageBytes();
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 3, initialRetryTime: 200 },
      });
      await producer.connect();
      this.producer = producer;
    }
    const groups = fitMessages(records, this.maxMessageBytes, Buffer.byteLength(this.key), (err) =>
      this.onInvalid("too_large", err.message),
    );
    for (const group of groups)
      await this.producer.send({
        topic: this.topic,
        acks: -1,
        messages: group.map((m) => ({
          key: this.key,
          value: m.value,
          headers: { "bifrost-sequence": String(m.sequence) },
        })),
      });
  }

  /**
   * The topic's max.message.bytes (its own or the broker's default); Kafka's default when it cannot be read (a
   * topic not there yet, a principal without DescribeConfigs), which only makes requests smaller than they could be.
   */
  private async topicMaxMessageBytes(): Promise<number> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: this.topic, configNames: ["max.message.bytes"] }],
      });
      const entry = resources[0]?.configEntries.find((e) => e.configName === "max.message.bytes");
      const value = Number(entry?.configValue);
      return Number.isSafeInteger(value) && value > 0 ? value : DEFAULT_MAX_MESSAGE_BYTES;
    } catch {
      return DEFAULT_MAX_MESSAGE_BYTES;
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  async reset(): Promise<void> {
    // A broker that restarted may have forgotten this producer's id, and the topic's limit may have changed:
    // start over with a new producer, which reads the limit again.
    const stale = this.producer;
    this.producer = undefined;
    await stale?.disconnect().catch(() => {});
  }

  close(): Promise<void> {
    return this.reset();
  }
}
