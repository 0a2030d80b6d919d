import { existsSync, rmdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Store } from '@stepline/core'
import { UsageError } from './errors'

/** Where `run`, `serve` and `runs` keep the journal unless `--db` says otherwise. */
export const DEFAULT_DB = './.stepline/stepline.db'

/**
 * The journal file `--db` names, checked before SQLite opens it: SQLite would take '' for a
 * temporary database, and report a directory as a file it cannot write.
 */
export function journalPath(command: string, db: string | undefined): string {
  const path = db ?? DEFAULT_DB
  if (path === '') throw new UsageError(`stepline ${command}: --db is empty. Pass the journal's file path, e.g. --db ${DEFAULT_DB}.`)
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UsageError(`stepline ${command}: --db ${path} is a directory; it names the journal file. Pass a file path, e.g. --db ${join(path, 'stepline.db')}.`)
  }
  return path
}

/** The SQLite store, loaded on demand so that `graph` and `--help` do not load the native driver. */
export async function openStore(path: string, options: { server?: boolean } = {}): Promise<Store> {
  const { sqliteStore } = await import('@stepline/store-sqlite')
  // A server under load: requests arriving in one event-loop turn share one commit, which the
  // journal log takes off the event loop.
  return sqliteStore({ path, ...(options.server ? { groupCommit: 'immediate' as const, writes: 'log' as const } : {}) })
}

/**
 * Call before opening the journal at `path`; the function it returns removes what opening it
 * created (the file, and its folder if that was new too), for a command that failed before it
 * wrote anything there: a refused payload or a port in use leaves no empty journal behind.
 */
export function undoNewJournal(path: string): () => void {
  if (existsSync(path)) return () => undefined
  const dir = dirname(path)
  const newDir = !existsSync(dir)
  return () => {
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true })
    // Only while empty: whatever else came to be there since is not this command's to delete.
    if (newDir) rmdirIfEmpty(dir)
  }
}

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir)
  } catch {
    // Not empty, or gone already.
  }
}
