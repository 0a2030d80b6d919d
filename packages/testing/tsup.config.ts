import { packageConfig } from '../../tsup.package'

// `@stepline/core` stays external (a dependency): the test runner must share the user's copy of the engine.
export default packageConfig()
