import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { IHeaders, Kafka, Producer } from "kafkajs";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../common/log.js";
import { type Batch, batchId, SampleKind } from "../proto/batch.js";
import { CodecError, decodeBatch } from "../proto/codec.js";

// Where an aggregator puts what it cannot store, so that nothing acknowledged upstream is lost and nothing
// blocks the rows, batches and tenants behind it: frames that do not decode (as received), rows outside its
// limits, and rows a store refuses for good (aggregator/isolate.ts), each with the reason. With Kafka, the
// dead-letter topic; without (`bifrost all`, an aggregator fed only over HTTP), a JSON-lines file.
//
// Each dead letter is a batch frame (proto/codec.ts) that can be replayed as it is: the refused rows are a batch
// of their own, whose id (proto/batch.ts batchPart) is unique to them, so a replay after the cause is fixed
// stores them once however often it runs. Replay: produce the topic's messages to kafka.topic again, or POST a
// file's frames (base64-decoded `frame`, joined as proto/frames.ts says) to an aggregator's /bifrost/v1/batches
// (docs/operations.md).

/** The reason of rows a store refuses for good (aggregator/isolate.ts). */
export const STORE_REJECTED = "store_rejected";

export interface DeadLetter {
  /** Why: a codec error kind, a validation reason, or store_rejected. */
  reason: string;
  error: string;
  /** Where the batch came from: a Kafka topic/partition/offset, an HTTP peer, a disk-buffer sequence. */
  source: string;
  /** A batch frame: the refused rows as a batch of their own, or the frame as received when it does not decode. */
  frame: Uint8Array;
  /** The Kafka message key: the node id. */
  key?: Buffer | string | null;
  /** Headers of the message the batch came in. */
  headers?: IHeaders;
}

export interface DeadLetters {
  /** Resolves once `letters` are durable. */
  write(letters: DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}

/** bifrost_aggregator_dead_letters_total, shared by every writer of the process. */
export function deadLetterCounter(registry: Registry): Counter<"reason"> {
  const name = "bifrost_aggregator_dead_letters_total";
  return (
    (registry.getSingleMetric(name) as Counter<"reason"> | undefined) ??
    new Counter({
      name,
      help: "Dead letters written (frames that do not decode, rows outside the limits, rows a store refuses for good), by reason.",
      labelNames: ["reason"],
      registers: [registry],
    })
  );
}

/** Writes dead letters to `sink`, then counts and logs each. */
export async function sendDeadLetters(
  sink: DeadLetters,
  letters: DeadLetter[],
  counter: Counter<"reason">,
  log: Logger,
): Promise<void> {
  if (letters.length === 0) return;
  await sink.write(letters);
  for (const { reason, error, source } of letters) {
    counter.inc({ reason });
    // A store's refusal can quote the refused values (ClickHouse names the column values), and `bifrost all`
    // stores its own log lines: logged, the refusal would be refused again, round after round. It is in the
    // dead letter.
    log.warn(
      reason === STORE_REJECTED ? { reason, source } : { reason, error: error.slice(0, 1000), source },
      "dead letter written",
    );
  }
}

/**
 * The dead-letter topic: each letter a message with the original key and headers, and the reason in headers.
 * Its producer connects on the first letter.
 */
export class KafkaDeadLetters implements DeadLetters {
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
  ) {
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  }

  async write(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await (this.connected ??= this.producer.connect().catch((err: unknown) => {
      this.connected = undefined;
      throw err;
    }));
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: letters.map((letter) => ({
        key: letter.key ?? null,
        value: Buffer.from(letter.frame.buffer, letter.frame.byteOffset, letter.frame.byteLength),
        headers: {
          ...letter.headers,
          "bifrost-error-reason": letter.reason,
          "bifrost-error": letter.error.slice(0, 4096),
          "bifrost-source": letter.source,
        },
      })),
    });
  }

  async close(): Promise<void> {
    if (this.connected !== undefined) await this.producer.disconnect();
  }
}

/** `<dir>/batches.jsonl`: one JSON line per dead letter, appended and fsynced. */
export class FileDeadLetters implements DeadLetters {
  readonly file: string;
  private queue: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, "batches.jsonl");
  }

  write(letters: DeadLetter[]): Promise<void> {
    const text = letters.map((letter) => `${JSON.stringify(deadLetterRecord(letter))}\n`).join("");
    // One writer at a time, so that lines never interleave.
    const written = this.queue.then(async () => {
      const handle = await open(this.file, "a");
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
    this.queue = written.catch(() => {});
    return written;
  }

  async close(): Promise<void> {
    await this.queue;
  }
}

/** A dead letter as a line of the file: the frame (base64), and its rows readable when it decodes. */
export function deadLetterRecord(letter: DeadLetter): Record<string, unknown> {
  let batch: Batch | undefined;
  try {
    batch = decodeBatch(letter.frame, { maxBatchBytes: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
  }
  return {
    time: new Date().toISOString(),
    reason: letter.reason,
    error: letter.error,
    source: letter.source,
    ...(batch
      ? {
          tenant: batch.tenant,
          batch_id: batchId(batch),
          streams: batch.streams.map((s) => ({
            stream: s.labels,
            values: s.entries.map((e) =>
              Object.keys(e.metadata).length > 0
                ? [String(e.timeUnixNano), e.line, e.metadata]
                : [String(e.timeUnixNano), e.line],
            ),
          })),
          series: batch.series.map((s) => ({
            name: s.name,
            labels: s.labels,
            kind: SampleKind[s.kind],
            points: s.points.map((p) => [p.timeUnixMs, String(p.value)]),
          })),
        }
      : {}),
    frame: Buffer.from(letter.frame).toString("base64"),
  };
}
