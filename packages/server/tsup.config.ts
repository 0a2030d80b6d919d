import { packageConfig } from '../../tsup.package'

// `@stepline/core` stays external (a dependency): the server drives the user's engine.
export default packageConfig()
