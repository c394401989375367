import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `make test-docker`: the Docker test on its own, after `make test`. Its file
 * is named *.docker.ts so the main suite (test/**\/*.test.ts) does not pick it
 * up: it holds fixed ports and builds images, and must not share the machine's
 * two cores with the timing-sensitive end-to-end tests.
 */
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../..', import.meta.url)),
    include: ['test/docker/**/*.docker.ts'],
    testTimeout: 60_000,
    hookTimeout: 1_200_000,
    pool: 'forks',
  },
});
