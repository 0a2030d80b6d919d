import { defineConfig, type Options } from 'tsup'

/**
 * The build every `@stepline/*` package shares: ESM + CJS + declarations for Node 20 from
 * `src/index.ts`. A package passes only what differs (shims, externals, a post-build copy).
 */
export function packageConfig(overrides: Options = {}): ReturnType<typeof defineConfig> {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    tsconfig: 'tsconfig.json',
    ...overrides,
  })
}
