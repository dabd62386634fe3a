// Generated corpora for the redact stage, from a seeded generator so every run sees the same lines: secrets of
// every detector in varied forms embedded in realistic lines (JSON, logfmt, access logs), look-alikes that must
// stay untouched, and ordinary log lines without any secret, on which any redaction is a false positive.

export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const DIGITS = "0123456789";
const HEX = "0123456789abcdef";
const B64URL = UPPER + LOWER + DIGITS + "-_";

export class Gen {
  constructor(readonly random: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }
  chars(alphabet: string, n: number): string {
    let out = "";
    for (let i = 0; i < n; i++) out += alphabet[Math.floor(this.random() * alphabet.length)];
    return out;
  }
  hex(n: number): string {
    return this.chars(HEX, n);
  }
  uuid(): string {
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-a${this.hex(3)}-${this.hex(12)}`;
  }
  word(): string {
    return this.pick(["alpha", "orders", "billing", "user", "cart", "edge", "sensor", "gateway", "auth", "report"]);
  }
  ip(): string {
    return `${this.int(1, 223)}.${this.int(0, 255)}.${this.int(0, 255)}.${this.int(1, 254)}`;
  }
  time(): string {
    return new Date(
      Date.UTC(2026, 11, 7, this.int(0, 23), this.int(0, 59), this.int(0, 59), this.int(0, 999)),
    ).toISOString();
  }
}

export interface Secret {
  detector: string;
  /** Every form of the secret that must not leave the node (a card number as written and as bare digits). */
  forms: string[];
  line: string;
}

const base64url = (text: string) => Buffer.from(text).toString("base64url");

function luhnDigit(partial: string): string {
  for (let d = 0; d < 10; d++) {
    const digits = partial + d;
    let sum = 0;
    for (let i = 0; i < digits.length; i++) {
      let v = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2 === 1 && (v *= 2) > 9) v -= 9;
      sum += v;
    }
    if (sum % 10 === 0) return String(d);
  }
  throw new Error("unreachable");
}

/** A card number of a real issuer's prefix and length, with a valid Luhn digit (or an invalid one with `broken`). */
export function cardNumber(gen: Gen, broken = false): string {
  const [prefix, length] = gen.pick([
    ["4", 16],
    ["4", 13],
    [String(gen.int(51, 55)), 16],
    [String(gen.int(2221, 2720)), 16],
    [gen.pick(["34", "37"]), 15],
    ["6011", 16],
    ["65", 16],
    ["35", 16],
    ["36", 14],
  ] as const);
  const body = prefix + gen.chars(DIGITS, length - prefix.length - 1);
  const check = luhnDigit(body);
  return body + (broken ? String((Number(check) + gen.int(1, 9)) % 10) : check);
}

function formatCard(gen: Gen, digits: string): string {
  const separator = gen.pick(["", " ", "-"]);
  if (separator === "") return digits;
  const sizes = digits.length === 15 ? [4, 6, 5] : digits.length === 14 ? [4, 6, 4] : [4, 4, 4, 4, 3];
  const parts: string[] = [];
  let at = 0;
  for (const size of sizes) {
    if (at >= digits.length) break;
    parts.push(digits.slice(at, (at += size)));
  }
  return parts.join(separator);
}

/** The value of a secret and how a log line holds it. */
function embed(gen: Gen, key: string, value: string): string {
  const ts = gen.time();
  switch (gen.int(0, 2)) {
    case 0:
      return JSON.stringify({
        ts,
        level: gen.pick(["info", "warn", "debug"]),
        msg: `${gen.word()} request`,
        [key]: value,
      });
    case 1:
      return `ts=${ts} level=info caller=${gen.word()}.go:${gen.int(10, 400)} msg="handled" ${key}="${value}" duration=${gen.int(1, 900)}ms`;
    default:
      // A value with spaces cannot be in a request line: it goes where the client put it, in its own header.
      return value.includes(" ")
        ? `${gen.ip()} - - [07/Dec/2026:12:${gen.int(10, 59)}:${gen.int(10, 59)} +0000] "POST /${gen.word()} HTTP/1.1" ${gen.pick([200, 401, 500])} ${gen.int(100, 9000)} "-" "curl/8.5.0" ${key}="${value}"`
        : `${gen.ip()} - - [07/Dec/2026:12:${gen.int(10, 59)}:${gen.int(10, 59)} +0000] "GET /${gen.word()}?${key}=${value} HTTP/1.1" ${gen.pick([200, 401, 500])} ${gen.int(100, 9000)} "-" "curl/8.5.0"`;
  }
}

function secretsOf(gen: Gen, detector: string): Secret {
  const one = (line: string, ...forms: string[]): Secret => ({ detector, forms, line });
  switch (detector) {
    case "bearer_token": {
      const token = gen.chars(B64URL + ".~", gen.int(20, 64));
      const scheme = gen.pick(["Bearer", "bearer", "BEARER"]);
      return gen.int(0, 2) === 0
        ? one(`${gen.time()} INFO outbound call headers={Authorization: ${scheme} ${token}} to ${gen.word()}`, token)
        : gen.int(0, 1) === 0
          ? one(JSON.stringify({ ts: gen.time(), headers: { authorization: `${scheme} ${token}` } }), token)
          : one(`level=debug msg="auth header" Authorization="${scheme} ${token}"`, token);
    }
    case "aws_access_key": {
      const key = gen.pick(["AKIA", "ASIA"]) + gen.chars(UPPER + "234567", 16);
      return one(embed(gen, gen.pick(["access_key_id", "aws_access_key_id", "AccessKeyId", "key"]), key), key);
    }
    case "aws_secret_key": {
      const secret = gen.chars(UPPER + LOWER + DIGITS + "/+", 40);
      const key = gen.pick(["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "SecretAccessKey", "secret_key"]);
      return gen.int(0, 1) === 0
        ? one(JSON.stringify({ ts: gen.time(), credentials: { [key]: secret } }), secret)
        : one(`${gen.time()} loaded profile ${gen.word()}: ${key} = ${secret}`, secret);
    }
    case "jwt": {
      const header = base64url(JSON.stringify({ alg: gen.pick(["HS256", "RS256", "ES256"]), typ: "JWT" }));
      const payload = base64url(JSON.stringify({ sub: gen.uuid(), iat: gen.int(1.7e9, 1.8e9), scope: gen.word() }));
      const token = `${header}.${payload}.${gen.chars(B64URL, gen.int(43, 86))}`;
      return one(embed(gen, gen.pick(["token", "id_token", "session", "jwt"]), token), token);
    }
    case "url_password": {
      const password = gen.chars(UPPER + LOWER + DIGITS + "!$%&*-_.~", gen.int(8, 24));
      const scheme = gen.pick(["postgres", "mysql", "redis", "amqp", "https", "mongodb+srv", "ftp"]);
      const url = `${scheme}://${gen.word()}${gen.int(1, 9)}:${password}@${gen.word()}.internal:${gen.int(1000, 9999)}/${gen.word()}`;
      return gen.int(0, 1) === 0
        ? one(`${gen.time()} ERROR cannot connect to ${url}: connection refused`, password)
        : one(JSON.stringify({ ts: gen.time(), level: "error", dsn: url }), password);
    }
    case "credit_card": {
      const digits = cardNumber(gen);
      const written = formatCard(gen, digits);
      return one(embed(gen, gen.pick(["card", "pan", "cc_number", "payment_card"]), written), written, digits);
    }
    case "email": {
      const email = `${gen.pick(["jane", "bob", "ops", "a.lee"])}${gen.pick(["", "+alerts", ".x"])}${gen.int(1, 999)}@${gen.word()}.${gen.pick(["com", "io", "co.uk", "example"])}`;
      return one(embed(gen, gen.pick(["email", "user", "to"]), email), email);
    }
    case "ipv4": {
      const ip = gen.ip();
      return one(embed(gen, gen.pick(["client_ip", "remote_addr", "src"]), ip), ip);
    }
    default: {
      const ip = gen.pick([
        `2001:db8:${gen.hex(4)}:${gen.hex(4)}:${gen.hex(4)}:${gen.hex(4)}:${gen.hex(4)}:${gen.hex(4)}`,
        `2001:db8::${gen.hex(4)}`,
        `fe80::${gen.hex(4)}:${gen.hex(4)}`,
        `::ffff:${gen.ip()}`,
      ]);
      return one(embed(gen, gen.pick(["client_ip", "peer", "src6"]), ip), ip);
    }
  }
}

export const SECRET_DETECTORS = [
  "bearer_token",
  "aws_access_key",
  "aws_secret_key",
  "jwt",
  "url_password",
  "credit_card",
  "email",
  "ipv4",
  "ipv6",
];

/** `perDetector` secrets of each detector, each in its own line. */
export function secretCorpus(perDetector: number, seed = 19): Secret[] {
  const gen = new Gen(seeded(seed));
  return SECRET_DETECTORS.flatMap((detector) => Array.from({ length: perDetector }, () => secretsOf(gen, detector)));
}

/** Look-alikes that no default detector may touch. */
export function lookAlikes(count: number, seed = 7): string[] {
  const gen = new Gen(seeded(seed));
  const makers: (() => string)[] = [
    () => `payment ref=${cardNumber(gen, true)} declined`,
    () => `request_id=${gen.uuid()} status=200`,
    () => `commit ${gen.hex(40)} sha256=${gen.hex(64)}`,
    () => `ts_ns=${1_765_000_000_000_000_000n + BigInt(gen.int(0, 1e9))} trace_id=${gen.hex(32)}`,
    () => `WWW-Authenticate: Bearer realm="api" error="invalid_token"`,
    () => `url=https://${gen.word()}.example.com:8443/v1/items?page=${gen.int(1, 9)} user=${gen.word()}@team`,
    () => `key_id=akia${gen.chars(LOWER, 16)} secret_rotation=enabled`,
    () => `snowflake=${gen.int(1, 9)}${gen.chars(DIGITS, 18)} epoch_ms=${1_765_000_000_000 + gen.int(0, 1e6)}`,
    () => `phone +1 ${gen.int(200, 999)} ${gen.int(200, 999)} ${gen.int(1000, 9999)} ext ${gen.int(1, 99)}`,
    () => `version=1.${gen.int(0, 20)}.${gen.int(0, 20)}.${gen.int(0, 99)} std::vector Foo::Bar::baz`,
  ];
  return Array.from({ length: count }, (_, i) => makers[i % makers.length]!());
}

/** Ordinary log lines of many kinds, none holding a secret. */
export function ordinaryCorpus(count: number, seed = 42): string[] {
  const gen = new Gen(seeded(seed));
  const path = () => `/${gen.word()}/${gen.pick(["list", "get", "update", "v2/search", "static/app.js"])}`;
  const makers: (() => string)[] = [
    () =>
      `${gen.ip()} - - [07/Dec/2026:${gen.int(10, 23)}:${gen.int(10, 59)}:${gen.int(10, 59)} +0000] "${gen.pick(["GET", "POST", "PUT"])} ${path()}?page=${gen.int(1, 50)} HTTP/1.1" ${gen.pick([200, 201, 304, 404, 500])} ${gen.int(120, 98000)} "https://${gen.word()}.example.com${path()}" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/${gen.int(100, 131)}.0.${gen.int(1000, 9999)}.${gen.int(10, 200)} Safari/537.36" ${gen.int(1, 999) / 1000}`,
    () =>
      JSON.stringify({
        ts: gen.time(),
        level: gen.pick(["info", "warn", "error", "debug"]),
        msg: gen.pick(["request served", "cache miss", "retrying", "job finished", "connection reset by peer"]),
        request_id: gen.uuid(),
        trace_id: gen.hex(32),
        span_id: gen.hex(16),
        user_id: gen.int(1, 10_000_000),
        duration_ms: gen.int(1, 5000) / 10,
      }),
    () =>
      `ts=${gen.time()} level=${gen.pick(["info", "warn"])} component=${gen.word()} msg="flushed batch" entries=${gen.int(1, 10_000)} bytes=${gen.int(1000, 9_999_999)} took=${gen.int(1, 999)}ms seq=${gen.int(1, 1e9)}`,
    () =>
      `Dec  7 ${gen.int(10, 23)}:${gen.int(10, 59)}:${gen.int(10, 59)} edge-${gen.int(1, 99)} kernel: [${gen.int(1, 99999)}.${gen.int(100000, 999999)}] eth0: link up, 1000Mbps, full-duplex, lpa 0x${gen.hex(4).toUpperCase()}`,
    () =>
      `${gen.time()} ERROR [${gen.word()}-worker-${gen.int(1, 16)}] java.lang.IllegalStateException: order ${gen.int(100000, 99999999)} not found at com.example.${gen.word()}.Service.handle(Service.java:${gen.int(10, 900)})`,
    () =>
      `${gen.time()} INFO SELECT id, name FROM ${gen.word()} WHERE created_at > '2026-12-0${gen.int(1, 7)} 00:00:00' AND tenant_id = ${gen.int(1, 5000)} LIMIT ${gen.int(10, 500)} (${gen.int(1, 900)} rows, ${gen.int(1, 99)}.${gen.int(100, 999)} ms)`,
    () =>
      `I1207 ${gen.int(10, 23)}:${gen.int(10, 59)}:${gen.int(10, 59)}.${gen.int(100000, 999999)}       1 controller.go:${gen.int(10, 999)}] "Successfully assigned pod" pod="${gen.word()}-${gen.hex(10)}-${gen.chars(LOWER + DIGITS, 5)}" node="node-${gen.int(1, 40)}" uid="${gen.uuid()}"`,
    () =>
      `${gen.time()} metrics cpu=${gen.int(0, 100)}.${gen.int(0, 99)}% mem=${gen.int(100, 16000)}MiB disk_free=${gen.int(1, 500)}G load=${gen.int(0, 8)}.${gen.int(10, 99)} uptime=${gen.int(1, 9_999_999)}s ns=${1_765_000_000_000_000_000n + BigInt(gen.int(0, 1e9))}`,
    () =>
      `${gen.time()} WARN payment provider answered 402 for invoice INV-${gen.int(2020, 2026)}-${gen.int(100000, 999999)} amount=${gen.int(1, 99999) / 100} EUR customer=${gen.int(1000, 99999)}`,
    () =>
      `${gen.time()} DEBUG GET https://api.${gen.word()}.example.com${path()}?since=${1_765_000_000 + gen.int(0, 1e6)}&limit=${gen.int(10, 100)} -> ${gen.pick([200, 204, 429])} etag="${gen.hex(32)}"`,
    () =>
      `${gen.time()} INFO user logged in user=${gen.word()}${gen.int(1, 999)} method=${gen.pick(["password", "sso", "webauthn"])} session=${gen.hex(24)} mfa=${gen.pick(["true", "false"])}`,
  ];
  return Array.from({ length: count }, () => gen.pick(makers)());
}
