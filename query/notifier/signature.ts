import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "X-Bifrost-Signature";
export const TIMESTAMP_HEADER = "X-Bifrost-Timestamp";

/**
 * The signature of one request: HMAC-SHA256, keyed with the receiver's `hmac_secret`, over the string
 * `<X-Bifrost-Timestamp>.<raw request body>` (decimal Unix seconds, a dot, the body bytes as sent), written
 * `sha256=<lower-case hex>`. The timestamp is inside the signed string so that a captured request cannot be
 * replayed later with a fresh timestamp.
 */
export function sign(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest("hex")}`;
}

/**
 * What a responder does with an incoming notification: recompute the signature, compare in constant time, and
 * refuse timestamps further than `toleranceSeconds` from its own clock.
 */
export function verify(
  secret: string,
  headers: { signature: string | null | undefined; timestamp: string | null | undefined },
  body: string,
  toleranceSeconds = 300,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  if (!headers.signature || !headers.timestamp || !/^\d{1,12}$/.test(headers.timestamp)) return false;
  const timestamp = Number(headers.timestamp);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(headers.signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
