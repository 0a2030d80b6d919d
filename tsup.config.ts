import { defineConfig } from 'tsup';

// Builds the `stepline` umbrella package. `@stepline/core` stays external (it is a dependency).
export default defineConfig({
  entry: ['src/index.ts', 'src/testing.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.build.json',
});
