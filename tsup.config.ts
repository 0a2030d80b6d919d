import { defineConfig } from 'tsup';

// Builds the `stepline` umbrella package. `@stepline/*` packages and tsx stay external (they are dependencies).
export default defineConfig([
  {
    entry: ['src/index.ts', 'src/testing.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    // The CLI build below writes into the same folder at the same time: leave its files alone.
    clean: ['!cli.js', '!cli.js.map'],
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
  },
  {
    // The `stepline` bin: one ESM file with a shebang (tsup marks it executable).
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    dts: false,
    clean: false,
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.build.json',
    banner: { js: '#!/usr/bin/env node' },
  },
]);
