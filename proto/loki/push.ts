import { promisify } from "node:util";
import { gunzip, inflate } from "node:zlib";
import protobuf from "protobufjs";
import { type LogStream } from "../batch.js";
import { labelsOf, type Labels, NO_LABELS } from "../labels.js";
import { protoFile } from "../files.js";
import { snappyLength, uncompressSnappy } from "../snappy-block.js";
import { LabelSetError, parseLabelSet } from "./labelset.js";

// The body of Loki's POST /loki/api/v1/push as streams: JSON (optionally gzip/deflate), or snappy-compressed
// protobuf (Promtail, Grafana Alloy, Fluent Bit). Used by every push route (the collector's receiver, the
// query service's central push); what a route does with the streams (limits, buffering, storing) is its own.

/** A push body that is not what Loki accepts; the route answers 400 with the message. */
export class PushBodyError extends Error {
  override readonly name = "PushBodyError";
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

/**
 * Decodes a push body by Loki's rule: JSON only when the content type says so, anything else snappy protobuf.
 * `maxBytes` bounds the decompressed body. Throws PushBodyError for malformed input, and zlib's
 * ERR_BUFFER_TOO_LARGE error for a gzip/deflate body over `maxBytes`.
 */
export async function decodePushBody(
  raw: Buffer,
  contentType: string,
  contentEncoding: string,
  maxBytes: number,
): Promise<LogStream[]> {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  const encoding = contentEncoding.trim().toLowerCase();
  return type === "application/json"
    ? fromJson(await decodeJsonBody(raw, encoding, maxBytes))
    : await fromProtobuf(raw, maxBytes);
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

async function fromProtobuf(body: Buffer, maxBytes: number): Promise<LogStream[]> {
  const length = snappyLength(body);
  if (length === undefined) throw new PushBodyError("the body is not snappy-compressed protobuf");
  if (length > maxBytes) throw new PushBodyError(`the decompressed body would exceed ${maxBytes} bytes`);
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
            : (BigInt(seconds.high >>> 0) << 32n) | BigInt(seconds.low >>> 0);
        return {
          timeUnixNano: secs * 1_000_000_000n + BigInt(entry.timestamp?.nanos ?? 0),
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

async function decodeJsonBody(raw: Buffer, encoding: string, maxBytes: number): Promise<unknown> {
  let text = raw;
  if (encoding !== "" && encoding !== "identity" && encoding !== "gzip" && encoding !== "deflate")
    throw new PushBodyError(`unsupported Content-Encoding ${encoding}`);
  try {
    if (encoding === "gzip") text = await promisify(gunzip)(raw, { maxOutputLength: maxBytes });
    else if (encoding === "deflate") text = await promisify(inflate)(raw, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw err;
    // A corrupt stream is the sender's fault (400), not the receiver's (500).
    throw new PushBodyError(`the body is not valid ${encoding}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text.toString("utf8"));
  } catch (err) {
    throw new PushBodyError(`the body is not JSON: ${(err as Error).message}`);
  }
}
