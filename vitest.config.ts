import { defineConfig } from 'vitest/config';

/**
 * One project per kind of test: unit tests run nothing; each integration
 * project starts its real parts once per run in its globalSetup (hosts lab
 * containers, kernel lab VMs, Docker engine + TLS registry) and fails loudly
 * when it cannot. The Kubernetes tests start their stand-in API server themselves.
 */
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 900_000,
    pool: 'forks',
    // .ci/run asks for a JSON report to check that no collected test was skipped.
    ...(process.env.ENSSIB_TEST_REPORT ? { reporters: ['default', 'json'], outputFile: { json: process.env.ENSSIB_TEST_REPORT } } : {}),
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'hosts', include: ['test/integration/hosts/**/*.test.ts'], globalSetup: ['test/support/setup-hosts-lab.ts'], fileParallelism: false },
      },
      {
        extends: true,
        test: { name: 'images', include: ['test/integration/images/**/*.test.ts'], globalSetup: ['test/support/setup-registry.ts'], fileParallelism: false },
      },
      { extends: true, test: { name: 'k8s', include: ['test/integration/k8s/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'kernel', include: ['test/integration/kernel/**/*.test.ts'], globalSetup: ['test/support/setup-kernel-lab.ts'], fileParallelism: false },
      },
    ],
  },
});
