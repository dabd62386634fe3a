// Loki's ip() label filter: a single address, a CIDR prefix or an `a-b` range (Go's net/netip and netipx), tested
// against every address-looking token of the value, as Loki's ipFilter scans a whole string.

interface Address {
  v6: boolean;
  bits: bigint;
}

export type IpMatcher = (value: string) => boolean;

function parseIPv4(text: string): bigint | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let bits = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part[0] === "0")) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    bits = (bits << 8n) | BigInt(octet);
  }
  return bits;
}

function parseIPv6(text: string): bigint | undefined {
  const zone = text.indexOf("%");
  const body = zone === -1 ? text : text.slice(0, zone);
  if (zone !== -1 && zone === text.length - 1) return undefined;
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length === 2 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : [];
  const words: number[] = [];
  const pushGroups = (list: string[], target: number[]): boolean => {
    for (let i = 0; i < list.length; i++) {
      const group = list[i]!;
      if (i === list.length - 1 && group.includes(".")) {
        const v4 = parseIPv4(group);
        if (v4 === undefined) return false;
        target.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return false;
      target.push(parseInt(group, 16));
    }
    return true;
  };
  const tailWords: number[] = [];
  if (halves.length === 2) {
    if (!pushGroups(head, words) || !pushGroups(tail, tailWords)) return undefined;
    if (words.length + tailWords.length > 7) return undefined;
    while (words.length + tailWords.length < 8) words.push(0);
    words.push(...tailWords);
  } else {
    if (!pushGroups(head, words) || words.length !== 8) return undefined;
  }
  let bits = 0n;
  for (const word of words) bits = (bits << 16n) | BigInt(word);
  return bits;
}

export function parseAddress(text: string): Address | undefined {
  if (text.includes(":")) {
    const bits = parseIPv6(text);
    return bits === undefined ? undefined : { v6: true, bits };
  }
  const bits = parseIPv4(text);
  return bits === undefined ? undefined : { v6: false, bits };
}

function parseMatcher(pattern: string): ((ip: Address) => boolean) | undefined {
  const single = parseAddress(pattern);
  if (single !== undefined) return (ip) => ip.v6 === single.v6 && ip.bits === single.bits;
  const slash = pattern.indexOf("/");
  if (slash !== -1) {
    const base = parseAddress(pattern.slice(0, slash));
    const lengthText = pattern.slice(slash + 1);
    if (base === undefined || pattern.includes("%") || !/^(0|[1-9]\d*)$/.test(lengthText)) return undefined;
    const width = base.v6 ? 128 : 32;
    const length = Number(lengthText);
    if (length > width) return undefined;
    const shift = BigInt(width - length);
    return (ip) => ip.v6 === base.v6 && ip.bits >> shift === base.bits >> shift;
  }
  const dash = pattern.indexOf("-");
  if (dash !== -1) {
    const from = parseAddress(pattern.slice(0, dash));
    const to = parseAddress(pattern.slice(dash + 1));
    if (from === undefined || to === undefined || from.v6 !== to.v6 || from.bits > to.bits) return undefined;
    if (pattern.includes("%")) return undefined;
    return (ip) => ip.v6 === from.v6 && ip.bits >= from.bits && ip.bits <= to.bits;
  }
  return undefined;
}

const IPV4_CHARS = /[0-9.]*/y;
const IPV6_CHARS = /[0-9a-fA-F:.]*/y;

function isDigit(char: string | undefined): boolean {
  return char !== undefined && char >= "0" && char <= "9";
}

function isHex(char: string | undefined): boolean {
  return char !== undefined && /[0-9a-fA-F]/.test(char);
}

/** Loki's hints for where an IPv6 address may start: a hex group of 1-4 digits followed by `:`, or `::x`. */
function ipv6Hint(text: string, i: number): boolean {
  if (text[i] === ":" && text[i + 1] === ":" && isHex(text[i + 2])) return true;
  for (let digits = 1; digits <= 4; digits++) {
    if (!isHex(text[i + digits - 1])) return false;
    if (text[i + digits] === ":") return true;
  }
  return false;
}

/** Compiles an ip() pattern; undefined when Loki would refuse it ("ip: invalid pattern"). */
export function compileIpMatcher(pattern: string): IpMatcher | undefined {
  const contains = parseMatcher(pattern);
  if (contains === undefined) return undefined;
  const test = (text: string, start: number, chars: RegExp): [boolean, number] => {
    chars.lastIndex = start;
    const token = chars.exec(text)![0];
    const ip = parseAddress(token);
    return [ip !== undefined && contains(ip), token.length];
  };
  return (value) => {
    for (let i = 0; i < value.length; i++) {
      const v4 =
        i + 3 < value.length &&
        isDigit(value[i]) &&
        (value[i + 1] === "." || value[i + 2] === "." || value[i + 3] === ".");
      if (v4 || ipv6Hint(value, i)) {
        const [ok, length] = test(value, i, v4 ? IPV4_CHARS : IPV6_CHARS);
        if (ok) return true;
        i += length;
      }
    }
    return false;
  };
}
