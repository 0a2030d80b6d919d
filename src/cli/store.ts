import type { Store } from '@stepline/core'

/** Where `run`, `serve` and `runs` keep the journal unless `--db` says otherwise. */
export const DEFAULT_DB = './.stepline/stepline.db'

/** The SQLite store, loaded on demand so that `graph` and `--help` do not load the native driver. */
export async function openStore(path: string, options: { server?: boolean } = {}): Promise<Store> {
  const { sqliteStore } = await import('@stepline/store-sqlite')
  // A server under load: requests arriving in one event-loop turn share one commit, which the
  // journal log takes off the event loop.
  return sqliteStore({ path, ...(options.server ? { groupCommit: 'immediate' as const, writes: 'log' as const } : {}) })
}
