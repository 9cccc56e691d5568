import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real-kernel VM test boots QEMU: `npm run test:vm` runs it with its own config.
    exclude: ['test/vm/**', 'node_modules/**'],
    // Integration tests start the built CLIs as real processes: build once before any test runs.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
