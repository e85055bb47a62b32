import { defineConfig } from 'vitest/config';

// The suites `npm run mutation` runs each mutant against: the unit suites and the integration
// suites of delivery (settling, the DLQ and what its entries keep, max_deliveries, shutdown, crash
// recovery, accounting, Redis outages). The plugin and admin suites exercise the same code paths far more slowly.
export default defineConfig({
  test: {
    include: [
      'tests/unit/**/*.test.ts',
      'tests/integration/{settle,dlq,shutdown,crash-recovery,accounting,redis-outage,stream-reader}.test.ts',
      // What a DLQ entry keeps of an oversized or binary payload and of a long reason.
      'tests/integration/security/{dlq-limits,binary-payloads}.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
