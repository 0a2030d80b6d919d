import { packageConfig } from '../../tsup.package'

// `@stepline/core` stays external (the user's copy of the engine); better-sqlite3 is native.
export default packageConfig({
  external: ['@stepline/core', 'better-sqlite3'],
  // import.meta.url in the CJS build too: the checkpointer finds its worker script beside the bundle.
  shims: true,
  onSuccess: 'cp src/checkpoint-worker.mjs src/journal-log-worker.mjs dist/',
})
