import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // End-to-end tests start real Envoy processes; give them room but keep unit tests snappy.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
