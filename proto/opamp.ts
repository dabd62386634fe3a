import { randomBytes } from "node:crypto";
import protobuf from "protobufjs";
import { protoFile } from "./files.js";

// OpAMP, the OpenTelemetry Open Agent Management Protocol: its messages as the opamp-spec repository defines them
// (proto/opamp/v1/*.proto, vendored unchanged with their license header), loaded with protobufjs as the Loki push
// schema is, and the two transports' framing. Shared by the fleet server and the collector's OpAMP client; the
// fields neither uses (packages, connection settings, custom messages) are left out of the plain objects below
// and ignored when they arrive.

const root = new protobuf.Root();
// opamp.proto imports "opamp/v1/anyvalue.proto", a path relative to the proto root, not to the importing file.
root.resolvePath = (origin, target) =>
  target.startsWith("opamp/") ? protoFile(target) : protobuf.util.path.resolve(origin, target);
root.loadSync(protoFile("opamp/v1/opamp.proto"));
const AgentToServerType = root.lookupType("opamp.proto.v1.AgentToServer");
const ServerToAgentType = root.lookupType("opamp.proto.v1.ServerToAgent");

/** The default URL path of an OpAMP endpoint, and the content type of the HTTP transport. */
export const OPAMP_PATH = "/v1/opamp";
export const OPAMP_CONTENT_TYPE = "application/x-protobuf";

export const AgentCapabilities = {
  ReportsStatus: 0x1,
  AcceptsRemoteConfig: 0x2,
  ReportsEffectiveConfig: 0x4,
  ReportsOwnMetrics: 0x40,
  AcceptsRestartCommand: 0x400,
  ReportsHealth: 0x800,
  ReportsRemoteConfig: 0x1000,
  ReportsHeartbeat: 0x2000,
} as const;

export const ServerCapabilities = {
  AcceptsStatus: 0x1,
  OffersRemoteConfig: 0x2,
  AcceptsEffectiveConfig: 0x4,
} as const;

export const AgentToServerFlags = { RequestInstanceUid: 0x1 } as const;
export const ServerToAgentFlags = { ReportFullState: 0x1 } as const;

export enum RemoteConfigStatus {
  Unset = 0,
  Applied = 1,
  Applying = 2,
  Failed = 3,
}

export enum ServerErrorType {
  Unknown = 0,
  BadRequest = 1,
  Unavailable = 2,
}

export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

export interface AgentConfigFile {
  body: Uint8Array;
  contentType: string;
}

/** Named configuration files (AgentConfigMap); one unnamed file has the key "". */
export type AgentConfigMap = Record<string, AgentConfigFile>;

export interface ComponentHealth {
  healthy: boolean;
  /** Unix nanoseconds. */
  startTimeUnixNano?: bigint;
  lastError?: string;
  status?: string;
  statusTimeUnixNano?: bigint;
  components?: Record<string, ComponentHealth>;
  attributes?: Attributes;
}

export interface AgentDescription {
  identifying: Attributes;
  nonIdentifying: Attributes;
}

export interface RemoteConfigReport {
  lastRemoteConfigHash: Uint8Array;
  status: RemoteConfigStatus;
  errorMessage: string;
}

/** An AgentToServer message; the optional parts are absent when unchanged since the agent last reported them. */
export interface AgentToServer {
  instanceUid: Uint8Array;
  sequenceNum: number;
  capabilities: number;
  flags?: number;
  agentDescription?: AgentDescription;
  health?: ComponentHealth;
  effectiveConfig?: AgentConfigMap;
  remoteConfigStatus?: RemoteConfigReport;
  agentDisconnect?: boolean;
}

export interface ServerToAgent {
  instanceUid: Uint8Array;
  errorResponse?: { type: ServerErrorType; message: string; retryAfterNs?: bigint };
  remoteConfig?: { config: AgentConfigMap; configHash: Uint8Array };
  flags?: number;
  capabilities?: number;
  agentIdentification?: { newInstanceUid: Uint8Array };
}

export class OpampDecodeError extends Error {
  override readonly name = "OpampDecodeError";
}

// Decoded messages: protobufjs objects whose 64-bit fields are Long instances.
type Long = { toString(): string };
type Decoded = Record<string, unknown>;

function long(value: unknown): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === "number") return BigInt(value);
  return BigInt((value as Long).toString());
}

function smallLong(value: unknown): number {
  const n = long(value);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new OpampDecodeError(`a 64-bit field is out of range: ${n}`);
  return Number(n);
}

// Decoded messages carry proto3 defaults on their prototype, so a oneof is read through its discriminator: the
// virtual field (here `value`) that protobufjs sets to the name of the member present.
function anyValue(value: Decoded | undefined): AttributeValue {
  if (value === undefined || value === null) return "";
  switch (value["value"]) {
    case "stringValue":
      return value["stringValue"] as string;
    case "boolValue":
      return value["boolValue"] as boolean;
    case "intValue":
      return Number(long(value["intValue"]));
    case "doubleValue":
      return value["doubleValue"] as number;
    case "bytesValue":
      return Buffer.from(value["bytesValue"] as Uint8Array).toString("base64");
    case "arrayValue":
    case "kvlistValue":
      // Kept as JSON text, which is all a selector can compare.
      return JSON.stringify(anyValueJson(value));
    default:
      return "";
  }
}

function anyValueJson(value: Decoded): unknown {
  if (value["value"] === "arrayValue")
    return (((value["arrayValue"] as Decoded)["values"] ?? []) as Decoded[]).map((v) => anyValueJson(v));
  if (value["value"] === "kvlistValue")
    return Object.fromEntries(
      (((value["kvlistValue"] as Decoded)["values"] ?? []) as Decoded[]).map((kv) => [
        kv["key"],
        kv["value"] ? anyValueJson(kv["value"] as Decoded) : null,
      ]),
    );
  return anyValue(value);
}

function attributesOf(list: unknown): Attributes {
  const out: Attributes = Object.create(null) as Attributes;
  for (const kv of (list as Decoded[] | undefined) ?? []) {
    if (typeof kv["key"] === "string") out[kv["key"]] = anyValue(kv["value"] as Decoded | undefined);
  }
  return out;
}

function keyValues(attributes: Attributes | undefined): Decoded[] {
  return Object.entries(attributes ?? {}).map(([key, value]) => ({
    key,
    value:
      typeof value === "string"
        ? { stringValue: value }
        : typeof value === "boolean"
          ? { boolValue: value }
          : Number.isInteger(value)
            ? { intValue: value }
            : { doubleValue: value },
  }));
}

function configMapOf(value: unknown): AgentConfigMap {
  const map = ((value as Decoded | undefined)?.["configMap"] ?? {}) as Record<string, Decoded>;
  const out: AgentConfigMap = Object.create(null) as AgentConfigMap;
  for (const [name, file] of Object.entries(map)) {
    out[name] = {
      body: (file["body"] as Uint8Array | undefined) ?? new Uint8Array(0),
      contentType: (file["contentType"] as string | undefined) ?? "",
    };
  }
  return out;
}

function configMapMessage(map: AgentConfigMap): Decoded {
  return { configMap: Object.fromEntries(Object.entries(map).map(([name, f]) => [name, { ...f }])) };
}

function healthOf(value: Decoded): ComponentHealth {
  const components = (value["componentHealthMap"] ?? {}) as Record<string, Decoded>;
  const health: ComponentHealth = {
    healthy: value["healthy"] === true,
    startTimeUnixNano: long(value["startTimeUnixNano"]),
    lastError: (value["lastError"] as string | undefined) ?? "",
    status: (value["status"] as string | undefined) ?? "",
    statusTimeUnixNano: long(value["statusTimeUnixNano"]),
  };
  if (Object.keys(components).length > 0)
    health.components = Object.fromEntries(Object.entries(components).map(([name, c]) => [name, healthOf(c)]));
  const attributes = attributesOf(value["attributes"]);
  if (Object.keys(attributes).length > 0) health.attributes = attributes;
  return health;
}

function healthMessage(health: ComponentHealth): Decoded {
  return {
    healthy: health.healthy,
    startTimeUnixNano: (health.startTimeUnixNano ?? 0n).toString(),
    lastError: health.lastError ?? "",
    status: health.status ?? "",
    statusTimeUnixNano: (health.statusTimeUnixNano ?? 0n).toString(),
    componentHealthMap: Object.fromEntries(
      Object.entries(health.components ?? {}).map(([name, c]) => [name, healthMessage(c)]),
    ),
    attributes: keyValues(health.attributes),
  };
}

function decode(type: protobuf.Type, bytes: Uint8Array): Decoded {
  try {
    return type.decode(bytes) as unknown as Decoded;
  } catch (err) {
    throw new OpampDecodeError(`malformed ${type.name}: ${(err as Error).message}`);
  }
}

export function decodeAgentToServer(bytes: Uint8Array): AgentToServer {
  const m = decode(AgentToServerType, bytes);
  const message: AgentToServer = {
    instanceUid: (m["instanceUid"] as Uint8Array | undefined) ?? new Uint8Array(0),
    sequenceNum: smallLong(m["sequenceNum"]),
    capabilities: smallLong(m["capabilities"]),
  };
  const flags = smallLong(m["flags"]);
  if (flags !== 0) message.flags = flags;
  const description = m["agentDescription"] as Decoded | undefined;
  if (description)
    message.agentDescription = {
      identifying: attributesOf(description["identifyingAttributes"]),
      nonIdentifying: attributesOf(description["nonIdentifyingAttributes"]),
    };
  if (m["health"]) message.health = healthOf(m["health"] as Decoded);
  if (m["effectiveConfig"]) message.effectiveConfig = configMapOf((m["effectiveConfig"] as Decoded)["configMap"]);
  const status = m["remoteConfigStatus"] as Decoded | undefined;
  if (status)
    message.remoteConfigStatus = {
      lastRemoteConfigHash: (status["lastRemoteConfigHash"] as Uint8Array | undefined) ?? new Uint8Array(0),
      status: (status["status"] as number | undefined) ?? RemoteConfigStatus.Unset,
      errorMessage: (status["errorMessage"] as string | undefined) ?? "",
    };
  if (m["agentDisconnect"]) message.agentDisconnect = true;
  return message;
}

export function encodeAgentToServer(message: AgentToServer): Uint8Array {
  const m: Decoded = {
    instanceUid: message.instanceUid,
    sequenceNum: message.sequenceNum,
    capabilities: message.capabilities,
    flags: message.flags ?? 0,
  };
  if (message.agentDescription)
    m["agentDescription"] = {
      identifyingAttributes: keyValues(message.agentDescription.identifying),
      nonIdentifyingAttributes: keyValues(message.agentDescription.nonIdentifying),
    };
  if (message.health) m["health"] = healthMessage(message.health);
  if (message.effectiveConfig) m["effectiveConfig"] = { configMap: configMapMessage(message.effectiveConfig) };
  if (message.remoteConfigStatus) m["remoteConfigStatus"] = { ...message.remoteConfigStatus };
  if (message.agentDisconnect) m["agentDisconnect"] = {};
  return AgentToServerType.encode(AgentToServerType.fromObject(m)).finish();
}

export function decodeServerToAgent(bytes: Uint8Array): ServerToAgent {
  const m = decode(ServerToAgentType, bytes);
  const message: ServerToAgent = { instanceUid: (m["instanceUid"] as Uint8Array | undefined) ?? new Uint8Array(0) };
  const error = m["errorResponse"] as Decoded | undefined;
  if (error) {
    const retry = error["retryInfo"] as Decoded | undefined;
    message.errorResponse = {
      type: (error["type"] as number | undefined) ?? ServerErrorType.Unknown,
      message: (error["errorMessage"] as string | undefined) ?? "",
      ...(retry ? { retryAfterNs: long(retry["retryAfterNanoseconds"]) } : {}),
    };
  }
  const remote = m["remoteConfig"] as Decoded | undefined;
  if (remote)
    message.remoteConfig = {
      config: configMapOf(remote["config"]),
      configHash: (remote["configHash"] as Uint8Array | undefined) ?? new Uint8Array(0),
    };
  const flags = smallLong(m["flags"]);
  if (flags !== 0) message.flags = flags;
  const capabilities = smallLong(m["capabilities"]);
  if (capabilities !== 0) message.capabilities = capabilities;
  const identification = m["agentIdentification"] as Decoded | undefined;
  if (identification)
    message.agentIdentification = {
      newInstanceUid: (identification["newInstanceUid"] as Uint8Array | undefined) ?? new Uint8Array(0),
    };
  return message;
}

export function encodeServerToAgent(message: ServerToAgent): Uint8Array {
  const m: Decoded = { instanceUid: message.instanceUid, flags: message.flags ?? 0 };
  if (message.capabilities !== undefined) m["capabilities"] = message.capabilities;
  if (message.errorResponse)
    m["errorResponse"] = {
      type: message.errorResponse.type,
      errorMessage: message.errorResponse.message,
      ...(message.errorResponse.retryAfterNs !== undefined
        ? { retryInfo: { retryAfterNanoseconds: message.errorResponse.retryAfterNs.toString() } }
        : {}),
    };
  if (message.remoteConfig)
    m["remoteConfig"] = {
      config: configMapMessage(message.remoteConfig.config),
      configHash: message.remoteConfig.configHash,
    };
  if (message.agentIdentification) m["agentIdentification"] = { ...message.agentIdentification };
  return ServerToAgentType.encode(ServerToAgentType.fromObject(m)).finish();
}

/**
 * A WebSocket message: the header, a varint that is 0 in this version of the protocol, then the protobuf bytes.
 */
export function wsFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(payload.length + 1);
  frame[0] = 0;
  frame.set(payload, 1);
  return frame;
}

/** The protobuf bytes of a WebSocket message; a header other than 0 makes the message malformed. */
export function wsPayload(frame: Uint8Array): Uint8Array {
  let header = 0n;
  let i = 0;
  for (let shift = 0n; ; shift += 7n, i++) {
    if (i >= frame.length || i >= 10) throw new OpampDecodeError("truncated WebSocket message header");
    const byte = frame[i]!;
    header |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) break;
  }
  if (header !== 0n) throw new OpampDecodeError(`unsupported WebSocket message header ${header}`);
  return frame.subarray(i + 1);
}

/** A UUID in its canonical text form; other lengths (not valid instance uids) as plain hex. */
export function uidText(uid: Uint8Array): string {
  const hex = Buffer.from(uid).toString("hex");
  if (hex.length !== 32) return hex;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The 16 bytes of a canonical UUID text. */
export function uidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`not a UUID: ${text}`);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** A UUID version 7 (time-ordered, random below the millisecond), as OpAMP recommends for instance uids. */
export function uuidV7(nowMs = Date.now()): Uint8Array {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  return new Uint8Array(bytes);
}
