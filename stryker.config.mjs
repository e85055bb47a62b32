// Mutation testing of the delivery code (not part of CI; it takes many hours). `npm run mutation`
// (scripts/mutation.mjs) runs this configuration on line ranges of engine/runtime/ and
// engine/runner/, resumably; every mutant is run against the tests that cover it among the unit and
// delivery suites (vitest.mutation.config.ts), real Redis included. Mutants in module-level code
// (static) would need every test for each of them and are left out.
// One file by hand, with the HTML report in reports/mutation/: npx stryker run --mutate engine/runtime/settle.ts
export default {
  testRunner: 'vitest',
  // Every test that covers a mutant runs, not only test files that import the mutated file: the
  // suites that start the engine as a child process reach it only through the command line.
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  mutate: ['engine/runtime/**/*.ts', 'engine/runner/**/*.ts'],
  coverageAnalysis: 'perTest',
  ignoreStatic: true,
  concurrency: 1,
  timeoutMS: 60_000,
  // The first run, which measures coverage, takes minutes: the engines it starts run through tsx.
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['.synapse', 'reports', 'bench/results', '.stryker-tmp'],
  cleanTempDir: 'always',
};
