import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  tsconfig: 'tsconfig.json',
  // import.meta.url in the CJS build too: the pool finds its worker script beside the bundle.
  shims: true,
  onSuccess: 'cp src/executors/cpu-worker.mjs dist/cpu-worker.mjs',
});
