import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against source, not dist.
    alias: {
      '@stepline/core': fileURLToPath(new URL('./packages/core/src/index.ts', import.meta.url)),
      '@stepline/testing': fileURLToPath(new URL('./packages/testing/src/index.ts', import.meta.url)),
      '@stepline/server': fileURLToPath(new URL('./packages/server/src/index.ts', import.meta.url)),
      '@stepline/store-sqlite': fileURLToPath(new URL('./packages/store-sqlite/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts', 'src/**/*.test.ts', 'examples/*/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    pool: 'forks',
    testTimeout: 20_000,
    hookTimeout: 20_000,
    typecheck: {
      enabled: true,
      include: ['**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
