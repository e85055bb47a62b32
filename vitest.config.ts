import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Builds dist/ when a source is newer: the tests that spawn `synapse` run the built command.
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start their own redis-server and engine processes; two cores.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
