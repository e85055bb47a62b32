// Mutation testing of the delivery code: `npm run mutation` (not part of CI; it takes a long
// time). Every mutant of engine/runtime/ and engine/runner/ is run against the tests that cover
// it among the unit and delivery suites (vitest.mutation.config.ts) — real Redis included — and
// the report lands in reports/mutation/.
// A narrower run: npx stryker run --mutate engine/runtime/settle.ts
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  mutate: ['engine/runtime/**/*.ts', 'engine/runner/**/*.ts'],
  coverageAnalysis: 'perTest',
  concurrency: 1,
  timeoutMS: 60_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['.synapse', 'reports', 'bench/results', '.stryker-tmp'],
  cleanTempDir: 'always',
};
