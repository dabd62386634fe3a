import { isIPv6 } from "node:net";
import { compileGoRegexp, type Re2, requiredLiterals, withIndices } from "../../../common/regex.js";

// The `redact` stage's detectors: what a secret of each kind looks like. Each has a precheck of plain string
// searches (or one pass over the characters) that rules most lines out before RE2 is asked (node-re2 costs
// microseconds a call to hand the text to C++), an RE2 expression whose group `secret` (else the whole match)
// is what gets replaced, and, where a pattern alone matches too much, a check of the candidate (Luhn, IPv6).

export interface Detector {
  readonly name: string;
  /** False when `text` cannot hold a match; must never be false when it can. */
  precheck(text: string): boolean;
  /** Global, with indices. */
  readonly regex: Re2;
  /** Whether the candidate (the `secret` group's text) really is one. */
  accept?(secret: string, text: string, end: number): boolean;
}

function anyOf(literals: readonly string[]): (text: string) => boolean {
  return (text) => {
    for (const literal of literals) if (text.includes(literal)) return true;
    return false;
  };
}

function detector(
  name: string,
  precheck: (text: string) => boolean,
  pattern: string,
  accept?: Detector["accept"],
): Detector {
  return { name, precheck, regex: withIndices(compileGoRegexp(pattern)), ...(accept ? { accept } : {}) };
}

/** The Luhn checksum of a run of digits, as card numbers carry it. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Issuer prefixes and lengths of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay). */
function cardIssuer(digits: string): boolean {
  const n = digits.length;
  const two = Number(digits.slice(0, 2));
  const four = Number(digits.slice(0, 4));
  if (digits[0] === "4") return n === 13 || n === 16 || n === 19;
  if ((two >= 51 && two <= 55) || (four >= 2221 && four <= 2720)) return n === 16;
  if (two === 34 || two === 37) return n === 15;
  if (four === 6011 || two === 65 || (four >= 6440 && four <= 6499) || two === 62 || two === 35)
    return n >= 16 && n <= 19;
  if (two === 36 || two === 38 || (four >= 3000 && four <= 3059)) return n === 14;
  return false;
}

/** A card number: 13-19 digits, one kind of separator (none, spaces or dashes), an issuer's prefix and length, Luhn. */
function cardNumber(candidate: string): boolean {
  const separator = /[ -]/.exec(candidate)?.[0];
  if (separator !== undefined && candidate.includes(separator === " " ? "-" : " ")) return false;
  const digits = separator === undefined ? candidate : candidate.split(separator).join("");
  return digits.length >= 13 && digits.length <= 19 && cardIssuer(digits) && luhnValid(digits);
}

/** Whether `text` has a run of at least 13 digits separated by nothing, spaces or dashes (a card number may). */
function hasDigitRun(text: string): boolean {
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits >= 13) return true;
    } else if (c !== 32 && c !== 45) digits = 0;
  }
  return false;
}

const WORD = /[0-9A-Za-z_]/;

export const BUILT_IN_DETECTORS = {
  bearer_token: detector(
    "bearer_token",
    anyOf(["earer", "EARER", "uthorization", "UTHORIZATION"]),
    `(?i)(?:\\bbearer\\s+|\\bauthorization["']?\\s*[:=]\\s*["']?(?:basic|token|bearer)?\\s*)(?P<secret>[A-Za-z0-9\\-._~+/]{8,}=*)`,
  ),
  aws_access_key: detector(
    "aws_access_key",
    anyOf(["AKIA", "ASIA"]),
    `(?P<secret>\\b(?:AKIA|ASIA)[A-Z2-7]{16})(?:[^A-Za-z0-9]|$)`,
  ),
  aws_secret_key: detector(
    "aws_secret_key",
    anyOf(["ecret", "ECRET"]),
    `(?i)(?:secret_?access_?key|secret_?key|aws_?secret)["']?\\s*[:=]\\s*["']?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`,
  ),
  jwt: detector(
    "jwt",
    anyOf(["eyJ"]),
    `(?P<secret>\\beyJ[A-Za-z0-9_-]{5,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]{8,})`,
  ),
  url_password: detector(
    "url_password",
    (text) => text.includes("://") && text.includes("@"),
    `[A-Za-z][A-Za-z0-9+.\\-]*://[^\\s:@/]+:(?P<secret>[^\\s@/?#]+)@`,
  ),
  credit_card: detector("credit_card", hasDigitRun, `(?P<secret>\\b\\d(?:[ \\-]?\\d){12,18})\\b`, (candidate) =>
    cardNumber(candidate),
  ),
  email: detector(
    "email",
    (text) => text.includes("@"),
    `(?P<secret>[A-Za-z0-9._%+\\-]+@[A-Za-z0-9](?:[A-Za-z0-9\\-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9\\-]*[A-Za-z0-9])?)*\\.[A-Za-z]{2,})`,
  ),
  // Before ipv4: an IPv4-mapped address (::ffff:10.0.0.1) is one IPv6 address.
  ipv6: detector(
    "ipv6",
    (text) => {
      const first = text.indexOf(":");
      return first !== -1 && text.indexOf(":", first + 1) !== -1;
    },
    `(?:^|[^0-9A-Za-z_:.])(?P<secret>[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)`,
    // Names like std::string or Foo::Bar are not addresses: the candidate must end where a word does too.
    (candidate, text, end) => /[0-9A-Fa-f]/.test(candidate) && !WORD.test(text[end] ?? " ") && isIPv6(candidate),
  ),
  ipv4: detector(
    "ipv4",
    (text) => text.includes("."),
    `(?P<secret>\\b(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d))(?:[^0-9.]|\\.[^0-9]|\\.?$)`,
  ),
} satisfies Record<string, Detector>;

export type DetectorName = keyof typeof BUILT_IN_DETECTORS;
export const DETECTOR_NAMES = Object.keys(BUILT_IN_DETECTORS) as DetectorName[];
/** Personal data rather than credentials, and present in most logs: redacted only when asked for. */
export const OPTIONAL_DETECTORS: readonly DetectorName[] = ["email", "ipv6", "ipv4"];
export const DEFAULT_DETECTORS = DETECTOR_NAMES.filter((name) => !OPTIONAL_DETECTORS.includes(name));

/** A detector from a user's RE2 expression; its prefilter is the literals every match must contain, if any. */
export function customDetector(name: string, pattern: string): Detector {
  const literals = requiredLiterals(pattern);
  return detector(name, literals === undefined ? () => true : anyOf(literals), pattern);
}

/**
 * `text` with every match of `detector` replaced by `marker` (its `secret` group, else the whole match), and how
 * many were; the same string when none was.
 */
export function redactWith(detector: Detector, text: string, marker: string): { text: string; count: number } {
  const regex = detector.regex;
  regex.lastIndex = 0;
  let out = "";
  let last = 0;
  let count = 0;
  for (let match = regex.exec(text); match !== null; match = regex.exec(text)) {
    const span = match.indices?.groups?.["secret"] ?? match.indices![0]!;
    const [start, end] = span;
    if (match[0] === "") {
      if (regex.lastIndex >= text.length) break;
      regex.lastIndex++;
      continue;
    }
    if (start < last || start === end) continue;
    const secret = text.slice(start, end);
    if (detector.accept !== undefined && !detector.accept(secret, text, end)) {
      // The trailing context a pattern consumed may begin the next candidate (two addresses one space apart).
      regex.lastIndex = Math.max(start + 1, end);
      continue;
    }
    out += text.slice(last, start) + marker;
    last = end;
    count++;
    if (regex.lastIndex > end) regex.lastIndex = end;
  }
  return count === 0 ? { text, count } : { text: out + text.slice(last), count };
}
