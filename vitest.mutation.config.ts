import { defineConfig } from 'vitest/config';

// The suites `npm run mutation` runs each mutant against: the unit suites and the integration
// suites of delivery (settling, the DLQ and what its entries keep, max_deliveries, shutdown, crash
// recovery, accounting, Redis outages). Those that start `synapse` as a child process run the
// mutated sources there (tests/helpers/mutation.ts). The plugin and admin suites exercise the same code paths far more slowly.
export default defineConfig({
  test: {
    // SYNAPSE_MUTATION_ONLY=1: only the suites named in SYNAPSE_MUTATION_SUITES (a short first run,
    // for experiments on one suite: `SYNAPSE_MUTATION_ONLY=1 SYNAPSE_MUTATION_SUITES=tests/x.test.ts
    // npx stryker run --mutate file.ts:10-20`).
    include: process.env.SYNAPSE_MUTATION_ONLY ? (process.env.SYNAPSE_MUTATION_SUITES?.split(',').filter(Boolean) ?? []) : [
      'tests/unit/**/*.test.ts',
      'tests/integration/{settle,dlq,shutdown,crash-recovery,accounting,redis-outage,stream-reader}.test.ts',
      // What a DLQ entry keeps of an oversized or binary payload and of a long reason.
      'tests/integration/security/{dlq-limits,binary-payloads}.test.ts',
      // Settling on a Redis Cluster, stream and DLQ in one slot or apart.
      'tests/integration/cluster/settle.test.ts',
      // Swapping a consumer's pipeline on reload, and pausing and resuming it.
      'tests/integration/hot-reload/hot-reload.test.ts',
      'tests/integration/admin/pipelines.test.ts',
      // The suites written for the files of this run (scripts/mutation.mjs names them).
      ...(process.env.SYNAPSE_MUTATION_SUITES?.split(',').filter(Boolean) ?? []),
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
