import { defineConfig } from 'tsup'

// `@stepline/core` stays external: the server drives the user's engine.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.json',
})
