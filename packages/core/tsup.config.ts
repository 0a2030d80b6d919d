import { packageConfig } from '../../tsup.package'

export default packageConfig({
  // import.meta.url in the CJS build too: the pool finds its worker script beside the bundle.
  shims: true,
  onSuccess: 'cp src/executors/cpu-worker.mjs dist/cpu-worker.mjs',
})
