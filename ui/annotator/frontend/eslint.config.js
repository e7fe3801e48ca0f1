// ESLint (flat config, no plugins) for the annotator's browser code and its node tests:
//   eslint --config ui/annotator/frontend/eslint.config.js ui/annotator/frontend tests/app
// tests/app/test_annotator_js.py runs it when eslint is installed (.ci/run installs it).

const browser = Object.fromEntries(
  [
    "createImageBitmap",
    "document",
    "fetch",
    "ImageData",
    "requestAnimationFrame",
    "ResizeObserver",
    "window",
  ].map((name) => [name, "readonly"])
);

export default [
  {
    files: ["**/*.js", "**/*.mjs"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: browser },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "array-callback-return": "error",
      "consistent-return": "error",
      eqeqeq: "error",
      "no-constant-condition": "error",
      "no-dupe-keys": "error",
      "no-duplicate-imports": "error",
      "no-fallthrough": "error",
      "no-redeclare": "error",
      "no-self-assign": "error",
      "no-shadow": "error",
      "no-undef": "error",
      "no-unreachable": "error",
      "no-unused-expressions": ["error", { allowTernary: true }],
      "no-unused-vars": "error",
      "no-use-before-define": ["error", { functions: false }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
];
