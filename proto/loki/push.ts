import protobuf from "protobufjs";
import { type LogStream } from "../batch.js";
import { labelsOf, type Labels, NO_LABELS } from "../labels.js";
import { protoFile } from "../files.js";
import { snappyLength, uncompressSnappy } from "../snappy-block.js";
import { LabelSetError, parseLabelSet } from "./labelset.js";

// The body of Loki's POST /loki/api/v1/push as streams: JSON (the route decompresses gzip/deflate first), or
// snappy-compressed protobuf (Promtail, Grafana Alloy, Fluent Bit). Used by every push route (the collector's
// receiver, the query service's central push); what a route does with the streams (the ingestion contract,
// buffering, storing) is its own.

/** A push body that is not what Loki accepts; the route answers `status` (400, or 413 when too large) with the message. */
export class PushBodyError extends Error {
  override readonly name = "PushBodyError";
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
  }
}

const pushRoot = protobuf.loadSync(protoFile("loki/push.proto"));
const PushRequest = pushRoot.lookupType("logproto.PushRequest");

interface WirePush {
  streams: {
    labels: string;
    entries: {
      timestamp?: { seconds?: number | { low: number; high: number }; nanos?: number };
      line: string;
      structuredMetadata: { name: string; value: string }[];
    }[];
  }[];
}

/** Loki's rule for a push body: JSON only when the content type says so, anything else snappy protobuf. */
export function isJsonPush(contentType: string): boolean {
  return contentType.split(";")[0]!.trim().toLowerCase() === "application/json";
}

/** A JSON push body, already decompressed, as streams; throws PushBodyError for malformed input. */
export function decodePushJson(body: Buffer): LogStream[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new PushBodyError(`the body is not JSON: ${(err as Error).message}`);
  }
  return fromJson(parsed);
}

function nsFromString(text: unknown, where: string): bigint {
  if (typeof text !== "string" || !/^\d{1,19}$/.test(text))
    throw new PushBodyError(`${where}: the timestamp must be a string of Unix nanoseconds`);
  return BigInt(text);
}

function fromJson(body: unknown): LogStream[] {
  const streams = (body as { streams?: unknown })?.streams;
  if (!Array.isArray(streams)) throw new PushBodyError('the body must be {"streams": [...]}');
  return streams.map((stream: { stream?: unknown; values?: unknown }, s) => {
    if (typeof stream?.stream !== "object" || stream.stream === null || Array.isArray(stream.stream))
      throw new PushBodyError(`streams[${s}].stream must be an object of labels`);
    if (!Array.isArray(stream.values)) throw new PushBodyError(`streams[${s}].values must be an array`);
    const labels = labelsOf(
      Object.entries(stream.stream).map(([name, value]) => {
        if (typeof value !== "string") throw new PushBodyError(`streams[${s}].stream.${name} must be a string`);
        return [name, value];
      }),
    );
    return {
      labels,
      entries: stream.values.map((value: unknown, e) => {
        const where = `streams[${s}].values[${e}]`;
        if (!Array.isArray(value) || value.length < 2 || value.length > 3)
          throw new PushBodyError(`${where} must be [timestamp, line] or [timestamp, line, metadata]`);
        if (typeof value[1] !== "string") throw new PushBodyError(`${where}: the line must be a string`);
        const metadata = value[2];
        if (metadata === undefined || metadata === null)
          return { timeUnixNano: nsFromString(value[0], where), line: value[1], metadata: NO_LABELS };
        if (
          typeof metadata !== "object" ||
          Array.isArray(metadata) ||
          Object.values(metadata).some((v) => typeof v !== "string")
        ) {
          throw new PushBodyError(`${where}: structured metadata must be an object of strings`);
        }
        return {
          timeUnixNano: nsFromString(value[0], where),
          line: value[1],
          metadata: labelsOf(Object.entries(metadata as Record<string, string>)),
        };
      }),
    };
  });
}

/** The length a snappy push body declares (its leading varint), read before anything is decompressed. */
export function pushBodyLength(buf: Buffer): number {
  const length = snappyLength(buf);
  if (length === undefined) throw new PushBodyError("the body is not snappy-compressed protobuf");
  return length;
}

/**
 * A snappy-compressed protobuf push body as streams, decompressed only when the length it declares is at most
 * `maxBytes` (413 otherwise); throws PushBodyError for malformed input.
 */
export async function decodePushProtobuf(body: Buffer, maxBytes: number): Promise<LogStream[]> {
  const declared = pushBodyLength(body);
  if (declared > maxBytes)
    throw new PushBodyError(`the decompressed body would be ${declared} bytes, the limit is ${maxBytes}`, 413);
  let wire: WirePush;
  try {
    wire = PushRequest.decode(await uncompressSnappy(body)) as unknown as WirePush;
  } catch (err) {
    throw new PushBodyError(`the body is not a snappy-compressed Loki PushRequest: ${(err as Error).message}`);
  }
  return wire.streams.map((stream, s) => {
    let labels: Labels;
    try {
      labels = parseLabelSet(stream.labels);
    } catch (err) {
      if (err instanceof LabelSetError)
        throw new PushBodyError(`streams[${s}].labels ${JSON.stringify(stream.labels.slice(0, 200))}: ${err.message}`);
      throw err;
    }
    return {
      labels,
      entries: stream.entries.map((entry) => {
        const seconds = entry.timestamp?.seconds ?? 0;
        const secs =
          typeof seconds === "number"
            ? BigInt(seconds)
            : BigInt.asIntN(64, (BigInt(seconds.high >>> 0) << 32n) | BigInt(seconds.low >>> 0));
        const nanos = entry.timestamp?.nanos ?? 0;
        // google.protobuf.Timestamp: nanos in [0, 10^9), whatever the sign of the seconds.
        if (!Number.isInteger(nanos) || nanos < 0 || nanos >= 1_000_000_000)
          throw new PushBodyError(`streams[${s}]: timestamp nanos ${nanos} is outside [0, 999999999]`);
        return {
          timeUnixNano: secs * 1_000_000_000n + BigInt(nanos),
          line: entry.line,
          metadata:
            entry.structuredMetadata.length === 0
              ? NO_LABELS
              : labelsOf(entry.structuredMetadata.map((m) => [m.name, m.value])),
        };
      }),
    };
  });
}
