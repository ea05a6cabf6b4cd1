import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: files in parallel on both; each file gets its own database or schema.
    pool: 'forks',
    maxWorkers: 2,
  },
});
