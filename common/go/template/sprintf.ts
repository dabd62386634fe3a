import { formatFloatFixed } from "../float-format.js";
import { goQuote } from "../quote.js";
import { GoInt, printValue, settle, type TemplateValue, typeName } from "./values.js";

/** fmt.Sprintf for the verbs people use in log templates: %s %v %d %f %g %e %q %x %X %t %c %%. */
export function sprintf(format: string, args: TemplateValue[]): string {
  let next = 0;
  const out = format.replace(
    /%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g,
    (_spec, flags: string, widthText?: string, precisionText?: string, verb?: string) => {
      if (verb === "%") return "%";
      if (next >= args.length) return `%!${verb}(MISSING)`;
      const arg = settle(args[next++]!);
      const precision = precisionText === undefined ? undefined : Number(precisionText);
      let text: string;
      const numeric = arg instanceof GoInt ? arg.value : typeof arg === "number" ? arg : undefined;
      switch (verb) {
        case "s":
        case "v":
          text = printValue(arg);
          if (verb === "s" && precision !== undefined) text = [...text].slice(0, precision).join("");
          break;
        case "d":
          text = arg instanceof GoInt ? String(arg.value) : `%!d(${typeName(arg)}=${printValue(arg)})`;
          break;
        case "f":
        case "F":
        case "e":
        case "g":
          if (numeric === undefined || arg instanceof GoInt) text = `%!${verb}(${typeName(arg)}=${printValue(arg)})`;
          else if (verb === "e") text = numeric.toExponential(precision ?? 6).replace(/e([+-])(\d)$/, "e$10$2");
          else if (verb === "g")
            text = precision === undefined ? printValue(numeric) : String(Number(numeric.toPrecision(precision)));
          else text = formatFloatFixed(numeric, precision);
          break;
        case "q":
          text = goQuote(printValue(arg));
          break;
        case "x":
        case "X":
          text = arg instanceof GoInt ? arg.value.toString(16) : Buffer.from(printValue(arg)).toString("hex");
          if (verb === "X") text = text.toUpperCase();
          break;
        case "t":
          text = typeof arg === "boolean" ? String(arg) : `%!t(${typeName(arg)}=${printValue(arg)})`;
          break;
        case "c":
          text = arg instanceof GoInt ? String.fromCodePoint(arg.value) : `%!c(${typeName(arg)}=${printValue(arg)})`;
          break;
        default:
          return `%!${verb}(${typeName(arg)}=${printValue(arg)})`;
      }
      if (
        flags.includes("+") &&
        numeric !== undefined &&
        numeric >= 0 &&
        !text.startsWith("+") &&
        /[dfFeg]/.test(verb!)
      )
        text = "+" + text;
      const width = widthText === undefined ? 0 : Number(widthText);
      if (text.length < width) {
        if (flags.includes("-")) text = text.padEnd(width);
        else if (flags.includes("0") && numeric !== undefined) {
          const sign = /^[+-]/.test(text) ? text[0]! : "";
          text = sign + text.slice(sign.length).padStart(width - sign.length, "0");
        } else text = text.padStart(width);
      }
      return text;
    },
  );
  if (next < args.length) {
    const extra = args.slice(next).map((arg) => `${typeName(arg)}=${printValue(arg)}`);
    return `${out}%!(EXTRA ${extra.join(", ")})`;
  }
  return out;
}
