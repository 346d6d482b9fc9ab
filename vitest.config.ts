import { defineConfig } from 'vitest/config';

// Three layers of tests (see README "Tests"):
// - unit: pure logic, no sockets;
// - integration: the real proxy on port 0 against an in-process upstream registry over TLS;
// - e2e: real registries (distribution) and real clients (skopeo, podman, ctr, dockerd) on loopback.
export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'integration', include: ['test/integration/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // Real daemons, /etc/hosts entries and well-known ports: one file at a time.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
