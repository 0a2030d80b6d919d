import { defineConfig } from 'tsup'

// `@stepline/core` stays external (the user's copy of the engine); better-sqlite3 is native.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.json',
  external: ['@stepline/core', 'better-sqlite3'],
})
