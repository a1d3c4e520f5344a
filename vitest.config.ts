import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Files that measure the mirror process itself (peak RSS): they run after every other file, alone, so
 * the bound is the program's, not that of a process starved of CPU by two other suites' servers and
 * clients (measured: the same push peaks ~20 MiB higher while other files run beside it).
 */
const MEASURED = ['test/integration/hosted-big-push.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    // Every temp dir of a run under one directory, removed at the end (workers run no exit handlers).
    globalSetup: ['./test/support/temp-root.ts'],
    // Integration suites start real registries, Redis and clients; two cores run two files at a time.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'suites', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, ...MEASURED], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'measured', include: MEASURED, sequence: { groupOrder: 1 } } },
    ],
  },
});
