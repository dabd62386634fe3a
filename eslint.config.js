// Lint: typescript-eslint's recommended rules over the whole tree. Formatting is Prettier's (npm run format).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
);
