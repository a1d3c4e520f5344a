import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Every temp dir of a run under one directory, removed at the end (workers run no exit handlers).
    globalSetup: ['./test/support/temp-root.ts'],
    // Integration suites start real registries, Redis and clients; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
  },
});
