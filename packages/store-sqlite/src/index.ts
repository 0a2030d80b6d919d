export { sqliteStore, SqliteStore } from './sqlite-store'
export type { SqliteStoreOptions } from './sqlite-store'
export { MIGRATIONS } from './schema'
