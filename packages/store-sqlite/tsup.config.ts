import { packageConfig } from '../../tsup.package'

// `@stepline/core` stays external (the user's copy of the engine); better-sqlite3 is native.
export default packageConfig({ external: ['@stepline/core', 'better-sqlite3'] })
