import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

/** Node globals for plain .js/.mjs files (TypeScript files are checked by tsc instead). */
const nodeGlobals = {
  Buffer: "readonly",
  URL: "readonly",
  URLSearchParams: "readonly",
  clearInterval: "readonly",
  clearTimeout: "readonly",
  console: "readonly",
  fetch: "readonly",
  process: "readonly",
  setInterval: "readonly",
  setTimeout: "readonly",
  structuredClone: "readonly",
  TextDecoder: "readonly",
  TextEncoder: "readonly",
};

export default defineConfig(
  globalIgnores([
    "**/dist/",
    "**/node_modules/",
    "**/coverage/",
    "services/shared/src/gen/**",
    "schemas/**/*.json",
  ]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: { globals: nodeGlobals },
  },
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { prefer: "type-imports", fixStyle: "separate-type-imports" },
      ],
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "no-restricted-syntax": [
        "error",
        {
          selector: "ExportDefaultDeclaration",
          message:
            "Use named exports (docs/style.md, TypeScript); default exports are for tool config files only.",
        },
      ],
    },
  },
  {
    // The shared library's public API is a list of names (its mod.ts), never a whole module.
    files: ["services/shared/src/mod.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        {
          selector: "ExportDefaultDeclaration",
          message: "Use named exports (STYLE.md); default exports are for tool config files only.",
        },
        {
          selector: "ExportAllDeclaration",
          message: "Name each export of @stafett/shared (values and types apart), no export *.",
        },
      ],
    },
  },
  {
    // Tools (eslint, vitest, vite, ...) load their config through a default export.
    files: ["**/*.config.{js,mjs,cjs,ts,mts}"],
    rules: { "no-restricted-syntax": "off" },
  },
  {
    // Services log through pino; only the CLI talks to a terminal.
    files: ["services/**/*.{ts,js,mjs}"],
    ignores: ["services/cli/**"],
    rules: { "no-console": "error" },
  },
);
