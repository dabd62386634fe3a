import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";

// Signed messages between the query service and the collectors: self-healing actions (query -> collector) and
// heartbeats (collector -> query). Both carry their signature inside the JSON body, so what is signed is a
// canonical string built from the body's fields, not the body bytes: a JSON array, serialised as
// JSON.stringify does (no whitespace), whose first element names the message kind. The kind keeps a signature
// of one kind from ever verifying as another; the array form keeps field boundaries unambiguous.
//
// Keys are Ed25519 (the signer holds the private key, verifiers the public key) or HMAC-SHA256 (a shared
// secret). Every key has an id that travels with the signature, so a verifier can hold several keys at once:
// rotation is "add the new key to the verifiers, switch the signer, remove the old key".

export type KeyAlgorithm = "ed25519" | "hmac-sha256";

/** A key as configured: its material inline (`key`) or in a file (`file`). */
export interface KeySpec {
  id: string;
  algorithm: KeyAlgorithm;
  key?: string | undefined;
  file?: string | undefined;
}

export interface SigningKey {
  id: string;
  /** The base64 signature of `text` (UTF-8). */
  sign(text: string): string;
}

export interface VerifyingKey {
  id: string;
  verify(text: string, signature: string): boolean;
}

/** Shorter HMAC secrets are refused: they could be guessed offline from one signed message. */
export const MIN_HMAC_SECRET_BYTES = 32;

function material(spec: KeySpec): string {
  if (spec.key !== undefined) return spec.key;
  if (spec.file !== undefined) return readFileSync(spec.file, "utf8");
  throw new Error(`key ${spec.id}: neither key nor file is set`);
}

function hmacSecret(spec: KeySpec): Buffer {
  const secret = Buffer.from(material(spec).trim(), "utf8");
  if (secret.length < MIN_HMAC_SECRET_BYTES)
    throw new Error(`key ${spec.id}: an HMAC secret needs at least ${MIN_HMAC_SECRET_BYTES} bytes`);
  return secret;
}

function ed25519(spec: KeySpec, key: KeyObject): KeyObject {
  if (key.asymmetricKeyType !== "ed25519")
    throw new Error(`key ${spec.id}: expected an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`);
  return key;
}

export function signingKey(spec: KeySpec): SigningKey {
  if (spec.algorithm === "hmac-sha256") {
    const secret = hmacSecret(spec);
    return { id: spec.id, sign: (text) => createHmac("sha256", secret).update(text, "utf8").digest("base64") };
  }
  const key = ed25519(spec, createPrivateKey(material(spec)));
  return { id: spec.id, sign: (text) => sign(null, Buffer.from(text, "utf8"), key).toString("base64") };
}

/** A verifier's key; for Ed25519 a private key PEM is accepted too (its public half is used). */
export function verifyingKey(spec: KeySpec): VerifyingKey {
  if (spec.algorithm === "hmac-sha256") {
    const secret = hmacSecret(spec);
    return {
      id: spec.id,
      verify: (text, signature) => {
        const expected = createHmac("sha256", secret).update(text, "utf8").digest();
        const presented = decodeSignature(signature);
        return presented !== undefined && presented.length === expected.length && timingSafeEqual(presented, expected);
      },
    };
  }
  const key = ed25519(spec, createPublicKey(material(spec)));
  return {
    id: spec.id,
    verify: (text, signature) => {
      const presented = decodeSignature(signature);
      return (
        presented !== undefined && presented.length === 64 && verify(null, Buffer.from(text, "utf8"), key, presented)
      );
    },
  };
}

function decodeSignature(signature: string): Buffer | undefined {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(signature) ? Buffer.from(signature, "base64") : undefined;
}

/** The keys a verifier accepts, by id. */
export class KeyRing {
  private readonly keys = new Map<string, VerifyingKey>();

  constructor(specs: KeySpec[]) {
    for (const spec of specs) this.keys.set(spec.id, verifyingKey(spec));
  }

  /** "unknown_key" or "bad_signature" when `signature` is not by a key of this ring over `text`, else null. */
  check(keyId: string, text: string, signature: string): "unknown_key" | "bad_signature" | null {
    const key = this.keys.get(keyId);
    if (key === undefined) return "unknown_key";
    return key.verify(text, signature) ? null : "bad_signature";
  }
}

/** A self-healing action as the query service sends it to a collector. */
export interface ActionEnvelope {
  /** Chosen by the sender; a retry of the same action keeps it, so the collector runs the action once. */
  id: string;
  action: string;
  params: Record<string, string>;
  node: string;
  /** RFC 3339 text or Unix milliseconds. */
  issued_at: string | number;
  nonce: string;
  key_id: string;
  signature: string;
}

/**
 * The text an action's signature covers:
 * JSON.stringify(["bifrost-action-v1", id, action, node, issued_at, nonce, key_id, [[name, value], ...]])
 * with the params as [name, value] pairs sorted by name (UTF-16 code units, as Array.prototype.sort), and
 * issued_at exactly as the envelope carries it (string or number).
 */
export function actionSigningText(envelope: Omit<ActionEnvelope, "signature">): string {
  const params = Object.entries(envelope.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    "bifrost-action-v1",
    envelope.id,
    envelope.action,
    envelope.node,
    envelope.issued_at,
    envelope.nonce,
    envelope.key_id,
    params,
  ]);
}

/** A collector's announcement of where its action endpoint is. */
export interface Heartbeat {
  node: string;
  url: string;
  /** Unix milliseconds. */
  ts: number;
  key_id: string;
  /** The collector's disk buffer incarnation (collector/wal.ts): absent from collectors older than it. */
  incarnation?: string;
  signature: string;
}

/**
 * JSON.stringify(["bifrost-heartbeat-v2", node, url, ts, key_id, incarnation]), or without an incarnation
 * ["bifrost-heartbeat-v1", node, url, ts, key_id] as older collectors sign: a v1 signature never verifies a
 * heartbeat that names an incarnation, so none can be added or changed.
 */
export function heartbeatSigningText(heartbeat: Omit<Heartbeat, "signature">): string {
  const { node, url, ts, key_id, incarnation } = heartbeat;
  return incarnation === undefined
    ? JSON.stringify(["bifrost-heartbeat-v1", node, url, ts, key_id])
    : JSON.stringify(["bifrost-heartbeat-v2", node, url, ts, key_id, incarnation]);
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** Unix milliseconds of an RFC 3339 timestamp or of a number of Unix milliseconds; undefined if neither. */
export function timestampMs(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string" || !RFC3339.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * A remote configuration's signature, sent beside it as a file of its own (common/remote-config.ts): for one node,
 * over the SHA-256 of the configuration's bytes, at a time that a collector never accepts going backwards.
 */
export interface RemoteConfigSignature {
  node: string;
  /** Unix milliseconds. */
  issued_at: number;
  key_id: string;
  /** Lowercase hex SHA-256 of the configuration file's bytes. */
  sha256: string;
  signature: string;
}

/** JSON.stringify(["bifrost-remote-config-v1", node, issued_at, key_id, sha256]). */
export function remoteConfigSigningText(signed: Omit<RemoteConfigSignature, "signature">): string {
  return JSON.stringify(["bifrost-remote-config-v1", signed.node, signed.issued_at, signed.key_id, signed.sha256]);
}
