// Go's printing of float64 values: what Loki, Prometheus and Go templates print must be printed the same here.

function nonFinite(value: number): string | undefined {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return undefined;
}

/**
 * strconv.FormatFloat(v, 'g', -1, 64), which fmt's %v and fmt.Sprint print: the shortest digits, with an exponent
 * below 1e-4 and from 1e6 on (`3e+06`, `1e-05`, `123456`).
 */
export function formatFloatG(value: number): string {
  const special = nonFinite(value);
  if (special !== undefined) return special;
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string];
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 6) {
    const sign = exponent < 0 ? "-" : "+";
    return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
  }
  return String(value);
}

/**
 * strconv.FormatFloat(v, 'f', -1, 64): the shortest digits, never an exponent; how Prometheus and Loki send sample
 * values and how LogQL prints numbers that must parse back.
 */
export function formatFloatF(value: number): string {
  const special = nonFinite(value);
  if (special !== undefined) return special;
  const text = String(value);
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (match === null) return text;
  const [, sign, lead, rest = "", exponent] = match as unknown as [string, string, string, string | undefined, string];
  const digits = lead + rest;
  const point = 1 + Number(exponent);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** strconv.FormatFloat(v, 'e', -1, 64): the shortest digits with a two-digit exponent (`1.5e+00`). */
export function formatFloatE(value: number): string {
  const special = nonFinite(value);
  if (special !== undefined) return special;
  const [mantissa, exponent] = value.toExponential().split("e") as [string, string];
  const sign = exponent.startsWith("-") ? "-" : "+";
  return `${mantissa}e${sign}${exponent.replace(/^[+-]/, "").padStart(2, "0")}`;
}

/** fmt's %.<precision>f: `precision` digits after the point (6 for a bare %f), NaN and ±Inf as Go spells them. */
export function formatFloatFixed(value: number, precision = 6): string {
  return nonFinite(value) ?? value.toFixed(precision);
}
