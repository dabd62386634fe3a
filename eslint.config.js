// Lint: typescript-eslint's recommended rules over the whole tree. Formatting is Prettier's (npm run format).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// A role (collector, aggregator, query, fleet) never imports another role, statically or with import(): shared formats
// are in proto/, shared plumbing in common/, the stores in storage/, and the process wiring (cli.ts, all.ts,
// config.ts, runtime.ts) beside them at the top.
const ROLES = ["collector", "aggregator", "query", "fleet"];
const roleBoundaries = ROLES.map((role) => {
  const others = ROLES.filter((other) => other !== role);
  const regex = `(^|/)(${others.join("|")})/`;
  const message = `${role}/ is a role and never imports another role (${others.join(", ")}): move what both need to proto/, common/ or storage/, or wire it in all.ts`;
  return {
    files: [`${role}/**/*.ts`],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ regex, message }] }],
      "no-restricted-syntax": [
        "error",
        { selector: `ImportExpression[source.value=/${regex.replaceAll("/", "\\/")}/]`, message },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".bifrost/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore names what a destructuring leaves out on purpose.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_" },
      ],
      // Terminal escapes and control characters are what some patterns exist to find.
      "no-control-regex": "off",
      // Initialised declarations read better than definite-assignment analysis in retry loops.
      "no-useless-assignment": "off",
      // [a, b] = ... with b reassigned later stays one let.
      "prefer-const": ["error", { destructuring: "all" }],
    },
  },
  ...roleBoundaries,
);
