// ESLint for the player's ES modules (make lint-js; make test runs it). Browser globals, the
// recommended rules, and a few that keep the code small and obvious.
import js from "@eslint/js";
import globals from "globals";

export default [
  // collected or built copies, installed packages
  { ignores: ["staticfiles/", "build/", "dist/", "site/", "test-artifacts/", ".venv/", "tests/e2e/npm/"] },
  js.configs.recommended,
  {
    files: ["speech/static/**/*.js"],
    languageOptions: { ecmaVersion: 2024, sourceType: "module", globals: globals.browser },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      eqeqeq: "error",
      "no-var": "error",
      "prefer-const": "error",
      "no-unused-vars": ["error", { args: "all", argsIgnorePattern: "^_" }],
      "no-shadow": "error",
      "no-implicit-globals": "error",
    },
  },
  {
    files: ["eslint.config.js"],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
];
