import path from 'node:path';
import { defineConfig } from 'vitest/config';

// `npm run test:vm`: the QEMU test alone (test/vm/README.md). It builds dist/ first like the main
// suite, then the guest image (cached in .vm-cache/), and boots one VM for all scenarios.
export default defineConfig({
  root: path.resolve(import.meta.dirname, '../..'),
  test: {
    include: ['test/vm/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    env: { SEKIMORI_VM_TEST: '1' },
    testTimeout: 60_000,
    hookTimeout: 240_000,
    pool: 'forks',
    fileParallelism: false,
    reporters: ['default'],
  },
});
