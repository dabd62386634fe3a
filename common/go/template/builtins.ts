import { fn, str, type TemplateFunction } from "./signature.js";
import { sprintf } from "./sprintf.js";
import { GoInt, isLabels, isTrue, printValue, settle, type TemplateValue, typeName } from "./values.js";

// Go's template builtins (text/template/funcs.go), with Go's comparison rules and messages.

type Comparable = { kind: "int" | "float" | "string" | "bool"; value: number | string | boolean };

function comparable(value: TemplateValue): Comparable | undefined {
  const settled = settle(value);
  if (settled instanceof GoInt) return { kind: "int", value: settled.value };
  if (typeof settled === "number") return { kind: "float", value: settled };
  if (typeof settled === "string") return { kind: "string", value: settled };
  if (typeof settled === "boolean") return { kind: "bool", value: settled };
  return undefined;
}

function basicEqual(a: TemplateValue, b: TemplateValue): boolean {
  const x = comparable(a);
  const y = comparable(b);
  if (x === undefined || y === undefined) {
    if (settle(a) === null || settle(b) === null) return settle(a) === settle(b);
    throw new Error("invalid type for comparison");
  }
  if (x.kind !== y.kind) throw new Error("incompatible types for comparison");
  return x.value === y.value;
}

function lessThan(a: TemplateValue, b: TemplateValue): boolean {
  const x = comparable(a);
  const y = comparable(b);
  if (x === undefined || y === undefined || x.kind === "bool" || y.kind === "bool")
    throw new Error("invalid type for comparison");
  if (x.kind !== y.kind) throw new Error("incompatible types for comparison");
  return x.value < y.value;
}

export const GO_BUILTINS = new Map<string, TemplateFunction>([
  [
    "and",
    {
      params: ["any"],
      variadic: "any",
      call: () => null,
      lazy: (args) => {
        let value: TemplateValue = null;
        for (const arg of args) {
          value = settle(arg());
          if (!isTrue(value)) return value;
        }
        return value;
      },
    },
  ],
  [
    "or",
    {
      params: ["any"],
      variadic: "any",
      call: () => null,
      lazy: (args) => {
        let value: TemplateValue = null;
        for (const arg of args) {
          value = settle(arg());
          if (isTrue(value)) return value;
        }
        return value;
      },
    },
  ],
  ["not", fn(["any"], ([a]) => !isTrue(a!))],
  [
    "len",
    fn(["any"], ([a]) => {
      if (typeof a === "string") return new GoInt(Buffer.byteLength(a));
      if (a !== null && a !== undefined && isLabels(a)) return new GoInt(Object.keys(a).length);
      throw new Error(`len of type ${typeName(a ?? null)}`);
    }),
  ],
  [
    "index",
    fn(
      ["any"],
      ([item, ...keys]) => {
        let value: TemplateValue = item!;
        for (const key of keys) {
          if (value !== null && isLabels(value) && typeof key === "string") value = value[key] ?? "";
          else if (typeof value === "string" && key instanceof GoInt) {
            const encoded: Buffer = Buffer.from(value);
            if (key.value < 0 || key.value >= encoded.length) throw new Error(`index out of range: ${key.value}`);
            value = new GoInt(encoded[key.value]!);
          } else throw new Error(`can't index item of type ${typeName(value)}`);
        }
        return value;
      },
      "any",
    ),
  ],
  [
    "eq",
    fn(
      ["any"],
      ([a, ...rest]) => {
        if (rest.length === 0) throw new Error("missing argument for comparison");
        return rest.some((b) => basicEqual(a!, b));
      },
      "any",
    ),
  ],
  ["ne", fn(["any", "any"], ([a, b]) => !basicEqual(a!, b!))],
  ["lt", fn(["any", "any"], ([a, b]) => lessThan(a!, b!))],
  ["le", fn(["any", "any"], ([a, b]) => lessThan(a!, b!) || basicEqual(a!, b!))],
  ["gt", fn(["any", "any"], ([a, b]) => !(lessThan(a!, b!) || basicEqual(a!, b!)))],
  ["ge", fn(["any", "any"], ([a, b]) => !lessThan(a!, b!))],
  [
    "print",
    fn(
      [],
      (args) =>
        args
          .map(
            (arg, i) =>
              (i > 0 && typeof arg !== "string" && typeof args[i - 1] !== "string" ? " " : "") + printValue(arg),
          )
          .join(""),
      "any",
    ),
  ],
  ["println", fn([], (args) => args.map(printValue).join(" ") + "\n", "any")],
  ["printf", fn(["string"], ([format, ...args]) => sprintf(str(format!), args), "any")],
]);
