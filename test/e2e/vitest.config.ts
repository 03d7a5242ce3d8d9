import { defineConfig } from 'vitest/config';

/** The opt-in end-to-end tests (test/e2e/run.sh): a real cluster, one file at a time. Never part of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
